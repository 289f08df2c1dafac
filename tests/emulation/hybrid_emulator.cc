#include "hybrid_emulator.h"

#include <cstring>
#include <optional>

#include "misc/numerics.h"
#include "rail_network.h"
#include "rank_threads.h"
#include "reference/fp8.h"

namespace nccl_moe::emulation {

namespace {

// A row as it travels: bf16/fp32 bytes, or E4M3 codes plus their per-128-channel scales.
struct RowPayload {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;

  int64_t size() const { return static_cast<int64_t>(bytes.size() + scales.size() * sizeof(float)); }
};

// Dispatch's network message: the route header (destinations, selections, receive rows) and the
// row. The relay works from this alone.
struct DispatchMessage {
  int32_t srcToken = -1;
  std::vector<Delivery> deliveries;
  RowPayload row;
};

// Combine's network message: one domain partial and the probability gradients of the route's
// selections (per delivery, in selection order).
struct CombineMessage {
  int32_t srcToken = -1;
  HostRows partial;
  std::vector<std::vector<float>> grads;
};

struct RowView {
  const uint8_t* bytes;
  const float* scales;  // FP8 only
};

Status checkSourceRows(const GroupLayout& layout, const std::vector<HostRows>& x) {
  const GroupShape& shape = layout.shape;
  if (static_cast<int>(x.size()) != shape.ranks)
    return Status::invalidArgument(format("%zu token tensors for %d ranks", x.size(), shape.ranks));
  for (int s = 0; s < shape.ranks; ++s)
    if (x[s].type() == ElementType::kE4m3 || x[s].type() != x[0].type() ||
        x[s].rows() != layout.tokensPerRank[s] || x[s].cols() != shape.hidden)
      return Status::invalidArgument(format("rank %d: x must be [%d,%d] bf16/fp32 like rank 0's", s,
                                            layout.tokensPerRank[s], shape.hidden));
  return Status::ok();
}

Status checkCombineRows(const GroupLayout& layout, const std::vector<HostRows>& rows) {
  const GroupShape& shape = layout.shape;
  if (static_cast<int>(rows.size()) != shape.ranks)
    return Status::invalidArgument(format("%zu row tensors for %d ranks", rows.size(), shape.ranks));
  for (int d = 0; d < shape.ranks; ++d)
    if (rows[d].type() == ElementType::kE4m3 || rows[d].type() != rows[0].type() ||
        rows[d].cols() != shape.hidden || rows[d].rows() < layout.recvRows(d))
      return Status::invalidArgument(format("rank %d: combine rows must be [>=%lld,%d] bf16/fp32 like rank 0's",
                                            d, (long long)layout.recvRows(d), shape.hidden));
  return Status::ok();
}

// Width of a dispatched probs / routing row on the destination: K, L, or 1 (expert-major).
int recvRoutingWidth(const GroupLayout& layout) {
  if (layout.options.layout == OutputLayout::kExpertMajor) return 1;
  return layout.format == RoutingFormat::kTopk ? layout.topk : layout.shape.localExperts();
}

const LocalSelection* selectionOf(const Delivery& delivery, int localExpert) {
  for (const LocalSelection& sel : delivery.selections)
    if (sel.localExpert == localExpert) return &sel;
  return nullptr;
}

// Outputs of a destination rank before anything arrives: zero rows and scales (padding stays so),
// empty routing, and the counts its own layout gives it.
void allocateDispatchOutput(const GroupLayout& layout, int d, bool fp8, ElementType rowType,
                            bool withProbs, RankDispatchOutput* out) {
  const int64_t n = layout.recvRows(d);
  const int H = layout.shape.hidden;
  out->x = HostRows(fp8 ? ElementType::kE4m3 : rowType, n, H);
  out->scales.assign(fp8 ? static_cast<size_t>(n) * fp8BlockCount(H) : 0, 0.0f);
  const size_t cells = static_cast<size_t>(n) * recvRoutingWidth(layout);
  if (layout.options.layout == OutputLayout::kPerRank) {
    if (layout.format == RoutingFormat::kTopk)
      out->topkIdx.assign(cells, -1);
    else
      out->routingMap.assign(cells, 0);
  }
  if (withProbs) out->probs.assign(cells, 0.0f);
  out->tokensPerExpert = layout.recv[d].tokensPerExpert;
  out->overflow = layout.recv[d].overflow;
}

// Writes one delivery (row copies and routing) into its destination's outputs.
class DeliveryWriter {
 public:
  DeliveryWriter(const GroupLayout& layout, bool withProbs, int64_t payloadBytes,
                 std::vector<RankDispatchOutput>& out, NvlinkCounter& nvlink)
      : layout_(layout), withProbs_(withProbs), payloadBytes_(payloadBytes), out_(out), nvlink_(nvlink) {}

  void write(int writer, const Delivery& delivery, const RowView& row) {
    RankDispatchOutput& dst = out_[delivery.dstRank];
    const int blocks = fp8BlockCount(layout_.shape.hidden);
    for (int64_t r : delivery.rows) {
      std::memcpy(dst.x.row(r), row.bytes, dst.x.rowBytes());
      if (row.scales) std::memcpy(dst.scales.data() + r * blocks, row.scales, sizeof(float) * blocks);
      nvlink_.count(writer, delivery.dstRank, payloadBytes_);
    }
    if (layout_.options.layout == OutputLayout::kExpertMajor)
      writeExpertMajorProbs(dst, delivery);
    else
      writePerRankRouting(dst, delivery);
  }

 private:
  void writePerRankRouting(RankDispatchOutput& dst, const Delivery& delivery) const {
    const size_t width = static_cast<size_t>(recvRoutingWidth(layout_));
    const size_t base = static_cast<size_t>(delivery.rows.front()) * width;
    for (const LocalSelection& sel : delivery.selections) {
      const bool topk = layout_.format == RoutingFormat::kTopk;
      const size_t cell = base + (topk ? sel.slot : sel.localExpert);
      if (topk)
        dst.topkIdx[cell] = sel.localExpert;
      else
        dst.routingMap[cell] = 1;
      if (withProbs_) dst.probs[cell] = sel.prob;
    }
  }

  // Each row of one segment carries the probability of that segment's expert.
  void writeExpertMajorProbs(RankDispatchOutput& dst, const Delivery& delivery) const {
    if (!withProbs_) return;
    const std::vector<RecvRow>& recv = layout_.recv[delivery.dstRank].rows;
    for (int64_t r : delivery.rows)
      if (const LocalSelection* sel = selectionOf(delivery, recv[r].localExpert)) dst.probs[r] = sel->prob;
  }

  const GroupLayout& layout_;
  bool withProbs_;
  int64_t payloadBytes_;
  std::vector<RankDispatchOutput>& out_;
  NvlinkCounter& nvlink_;
};

// A source rank's rows as they leave it: the input rows, or their FP8 quantisation (made once).
class SourceRows {
 public:
  SourceRows(const std::vector<HostRows>& x, const Fp8Options& fp8) : x_(x), fp8_(fp8), codes_(x.size()), scales_(x.size()) {}

  void prepare(int s) {
    if (!fp8_.enabled) return;
    const HostRows& in = x_[s];
    const int H = in.cols();
    const int blocks = fp8BlockCount(H);
    codes_[s] = HostRows(ElementType::kE4m3, in.rows(), H);
    scales_[s].assign(static_cast<size_t>(in.rows()) * blocks, 0.0f);
    std::vector<float> values(H);
    for (int64_t t = 0; t < in.rows(); ++t) {
      for (int c = 0; c < H; ++c) values[c] = in.get(t, c);
      quantizeRowE4m3(values.data(), H, fp8_.powerOfTwoScales, codes_[s].row(t), scales_[s].data() + t * blocks);
    }
  }

  RowView view(int s, int t) const {
    if (!fp8_.enabled) return {x_[s].row(t), nullptr};
    return {codes_[s].row(t), scales_[s].data() + static_cast<size_t>(t) * fp8BlockCount(x_[s].cols())};
  }

  RowPayload payload(int s, int t) const {
    const RowView row = view(s, t);
    const HostRows& rows = fp8_.enabled ? codes_[s] : x_[s];
    RowPayload payload;
    payload.bytes.assign(row.bytes, row.bytes + rows.rowBytes());
    if (row.scales) payload.scales.assign(row.scales, row.scales + fp8BlockCount(rows.cols()));
    return payload;
  }

 private:
  const std::vector<HostRows>& x_;
  Fp8Options fp8_;
  std::vector<HostRows> codes_;
  std::vector<std::vector<float>> scales_;
};

Status finish(const FirstError& errors, int64_t unreceived) {
  if (errors.any()) return Status::internal(errors.message());
  if (unreceived != 0)
    return Status::internal(format("network: %lld messages were sent but never received", (long long)unreceived));
  return Status::ok();
}

}  // namespace

Status emulateDispatch(const HybridPlan& plan, const std::vector<HostRows>& x, bool withProbs,
                       const EmulationOptions& options, std::vector<RankDispatchOutput>* out,
                       MeasuredTraffic* measured) {
  const GroupLayout& layout = plan.layout;
  if (Status s = checkSourceRows(layout, x); !s.isOk()) return s;
  const int R = plan.grid.ranks;
  const bool fp8 = options.fp8.enabled;
  const int64_t payloadBytes = hybridDispatchRowBytes(layout.shape.hidden, x[0].type(), fp8);
  FirstError errors;
  RailNetwork<DispatchMessage> network(plan.grid, errors);
  NvlinkCounter nvlink;
  SourceRows sources(x, options.fp8);
  out->assign(R, RankDispatchOutput());
  DeliveryWriter writer(layout, withProbs, payloadBytes, *out, nvlink);

  auto prepare = [&](int r) {
    allocateDispatchOutput(layout, r, fp8, x[0].type(), withProbs, &(*out)[r]);
    sources.prepare(r);  // quantise once; direct and network copies carry the same codes
  };
  auto networkPhase = [&](int s) {
    for (const TokenRoute& route : plan.ranks[s].networkSends) {
      DispatchMessage message{route.srcToken, route.deliveries, sources.payload(s, route.srcToken)};
      const int64_t bytes = message.row.size();
      network.send(s, route.collector, std::move(message), bytes);
    }
  };
  auto nvlinkPhase = [&](int r) {
    for (const TokenRoute& route : plan.ranks[r].directRoutes)
      for (const Delivery& delivery : route.deliveries) writer.write(r, delivery, sources.view(r, route.srcToken));
    for (const RouteRef& ref : plan.ranks[r].forwards) {
      std::optional<DispatchMessage> message = network.receive(ref.srcRank, r);
      if (!message) continue;
      if (message->srcToken != plan.route(ref).srcToken) {
        errors.report(format("rank %d: from rank %d token %d arrived where the plan expects token %d", r,
                             ref.srcRank, message->srcToken, plan.route(ref).srcToken));
        continue;
      }
      const RowView row{message->row.bytes.data(), message->row.scales.empty() ? nullptr : message->row.scales.data()};
      for (const Delivery& delivery : message->deliveries) writer.write(r, delivery, row);
    }
  };
  runRankPhases(R, options.threads, {prepare, networkPhase, nvlinkPhase});

  measured->dispatch = {network.messages(), nvlink.rows.load(), network.bytes(), nvlink.bytes.load()};
  return finish(errors, network.unreceived());
}

Status emulateCombine(const HybridPlan& plan, const std::vector<HostRows>& rows,
                      const std::vector<std::vector<float>>* gradRecvProbs,
                      const EmulationOptions& options, std::vector<HostRows>* out,
                      std::vector<std::vector<float>>* probsGrad, MeasuredTraffic* measured) {
  const GroupLayout& layout = plan.layout;
  if (Status s = checkCombineRows(layout, rows); !s.isOk()) return s;
  const int R = plan.grid.ranks;
  const int H = layout.shape.hidden;
  const int recvWidth = recvRoutingWidth(layout);
  if (gradRecvProbs) {
    if (static_cast<int>(gradRecvProbs->size()) != R)
      return Status::invalidArgument("probs gradient needs one tensor per rank");
    for (int d = 0; d < R; ++d)
      if ((*gradRecvProbs)[d].size() < static_cast<size_t>(layout.recvRows(d)) * recvWidth)
        return Status::invalidArgument(format("rank %d: probs gradient too small", d));
  }
  const ElementType type = rows[0].type();
  const int64_t rowBytes = hybridCombineRowBytes(H, type);
  const int srcWidth = layout.format == RoutingFormat::kTopk ? layout.topk : layout.shape.experts;
  FirstError errors;
  RailNetwork<CombineMessage> network(plan.grid, errors);
  NvlinkCounter nvlink;
  // Per collector: rank partials by inbox row, their gradients; own-domain partials by route.
  std::vector<HostRows> inbox(R), ownDomainPartials(R);
  std::vector<std::vector<std::vector<float>>> gradInbox(R);
  out->assign(R, HostRows());
  if (probsGrad) probsGrad->assign(R, {});

  auto prepare = [&](int r) {
    inbox[r] = HostRows(type, plan.ranks[r].inboxRows, H);
    gradInbox[r].assign(gradRecvProbs ? plan.ranks[r].inboxRows : 0, {});
    ownDomainPartials[r] = HostRows(type, static_cast<int64_t>(plan.ranks[r].directRoutes.size()), H);
    (*out)[r] = HostRows(type, layout.tokensPerRank[r], H);
    if (probsGrad) (*probsGrad)[r].assign(static_cast<size_t>(layout.tokensPerRank[r]) * srcWidth, 0.0f);
  };
  // Hop 1 (NVLink): each destination sums its rows of a token into a rank partial.
  auto rankPartials = [&](int d) {
    std::vector<float> sum(H);
    for (const DeliveryRef& ref : plan.ranks[d].partialSends) {
      const TokenRoute& route = plan.route(ref);
      const Delivery& delivery = route.deliveries[ref.deliveryIndex];
      std::fill(sum.begin(), sum.end(), 0.0f);
      for (int64_t r : delivery.rows)
        for (int c = 0; c < H; ++c) sum[c] += rows[d].get(r, c);
      const int64_t slot = route.inboxSlot + ref.deliveryIndex;
      for (int c = 0; c < H; ++c) inbox[route.collector].set(slot, c, sum[c]);
      nvlink.count(d, route.collector, rowBytes);
      if (!gradRecvProbs) continue;
      std::vector<float> grads;
      const std::vector<float>& grad = (*gradRecvProbs)[d];
      for (const LocalSelection& sel : delivery.selections) {
        float value = 0.0f;  // a selection whose row a budget dropped has no gradient
        if (layout.options.layout == OutputLayout::kPerRank) {
          const int column = layout.format == RoutingFormat::kTopk ? sel.slot : sel.localExpert;
          value = grad[static_cast<size_t>(delivery.rows.front()) * recvWidth + column];
        } else {
          for (int64_t r : delivery.rows)
            if (layout.recv[d].rows[r].localExpert == sel.localExpert) value = grad[r];
        }
        grads.push_back(value);
      }
      gradInbox[route.collector][slot] = std::move(grads);
    }
  };
  auto domainPartial = [&](int c, const TokenRoute& route, HostRows* partial, int64_t row) {
    std::vector<float> sum(H, 0.0f);
    for (size_t j = 0; j < route.deliveries.size(); ++j)
      for (int k = 0; k < H; ++k) sum[k] += inbox[c].get(route.inboxSlot + static_cast<int64_t>(j), k);
    for (int k = 0; k < H; ++k) partial->set(row, k, sum[k]);
  };
  auto routeGrads = [&](int c, const TokenRoute& route) {
    std::vector<std::vector<float>> grads;
    if (!gradRecvProbs) return grads;
    for (size_t j = 0; j < route.deliveries.size(); ++j)
      grads.push_back(std::move(gradInbox[c][route.inboxSlot + static_cast<int64_t>(j)]));
    return grads;
  };
  // Hop 2: collectors reduce each route to one domain partial; relays send it over the network.
  auto domainPartials = [&](int c) {
    const RankHybridSchedule& rank = plan.ranks[c];
    for (size_t i = 0; i < rank.directRoutes.size(); ++i)
      domainPartial(c, rank.directRoutes[i], &ownDomainPartials[c], static_cast<int64_t>(i));
    for (const RouteRef& ref : rank.forwards) {
      const TokenRoute& route = plan.route(ref);
      CombineMessage message{route.srcToken, HostRows(type, 1, H), routeGrads(c, route)};
      domainPartial(c, route, &message.partial, 0);
      network.send(c, ref.srcRank, std::move(message), rowBytes);
    }
  };
  // Hop 3: the source sums its domain partials in domain order.
  auto sourceSums = [&](int s) {
    const RankHybridSchedule& rank = plan.ranks[s];
    const int home = plan.grid.domainOf(s);
    std::vector<std::optional<CombineMessage>> received;
    for (const TokenRoute& route : rank.networkSends) {
      received.push_back(network.receive(route.collector, s));
      if (received.back() && received.back()->srcToken != route.srcToken)
        errors.report(format("rank %d: partial of token %d arrived where the plan expects token %d", s,
                             received.back()->srcToken, route.srcToken));
    }
    if (errors.any()) return;
    std::vector<float> total(static_cast<size_t>(layout.tokensPerRank[s]) * H, 0.0f);
    auto add = [&](const TokenRoute& route, const HostRows& partial, int64_t row,
                   const std::vector<std::vector<float>>& grads) {
      float* acc = total.data() + static_cast<size_t>(route.srcToken) * H;
      for (int c = 0; c < H; ++c) acc[c] += partial.get(row, c);
      if (!probsGrad) return;
      for (size_t j = 0; j < route.deliveries.size(); ++j)
        for (size_t k = 0; k < route.deliveries[j].selections.size(); ++k)
          (*probsGrad)[s][static_cast<size_t>(route.srcToken) * srcWidth + route.deliveries[j].selections[k].slot] =
              grads[j][k];
    };
    size_t next = 0;  // networkSends are ordered by domain
    for (int m = 0; m < plan.grid.domains(); ++m) {
      if (m == home) {
        for (size_t i = 0; i < rank.directRoutes.size(); ++i) {
          const TokenRoute& route = rank.directRoutes[i];
          std::vector<std::vector<float>> grads;
          if (gradRecvProbs)
            for (size_t j = 0; j < route.deliveries.size(); ++j)
              grads.push_back(gradInbox[s][route.inboxSlot + static_cast<int64_t>(j)]);
          add(route, ownDomainPartials[s], static_cast<int64_t>(i), grads);
        }
        continue;
      }
      for (; next < rank.networkSends.size() && rank.networkSends[next].domain == m; ++next)
        add(rank.networkSends[next], received[next]->partial, 0, received[next]->grads);
    }
    for (int t = 0; t < layout.tokensPerRank[s]; ++t)
      for (int c = 0; c < H; ++c) (*out)[s].set(t, c, total[static_cast<size_t>(t) * H + c]);
  };
  runRankPhases(R, options.threads, {prepare, rankPartials, domainPartials, sourceSums});

  measured->combine = {network.messages(), nvlink.rows.load(), network.bytes(), nvlink.bytes.load()};
  return finish(errors, network.unreceived());
}

}  // namespace nccl_moe::emulation
