#include "reference/reference.h"

#include <algorithm>

#include "reference/fp8.h"

namespace nccl_moe {

namespace {

Status checkTokenRows(const GroupLayout& layout, const std::vector<HostRows>& x) {
  const GroupShape& shape = layout.shape;
  if (static_cast<int>(x.size()) != shape.ranks)
    return Status::invalidArgument(format("%zu token tensors for %d ranks", x.size(), shape.ranks));
  for (int s = 0; s < shape.ranks; ++s) {
    if (x[s].type() == ElementType::kE4m3)
      return Status::invalidArgument(format("rank %d: token rows must be bf16 or fp32", s));
    if (x[s].type() != x[0].type())
      return Status::invalidArgument(format("rank %d: token rows are %s, rank 0's %s", s,
                                            toString(x[s].type()), toString(x[0].type())));
    if (x[s].rows() != layout.tokensPerRank[s] || x[s].cols() != shape.hidden)
      return Status::invalidArgument(format("rank %d: x is [%lld,%d], expected [%d,%d]", s,
                                            (long long)x[s].rows(), x[s].cols(),
                                            layout.tokensPerRank[s], shape.hidden));
  }
  return Status::ok();
}

// Copies (or quantises) every received row; padding rows stay zero with zero scales.
void moveRows(const GroupLayout& layout, const std::vector<HostRows>& x, const Fp8Options& fp8,
              int d, HostRows* rows, std::vector<float>* scales) {
  const int H = layout.shape.hidden;
  const int blocks = fp8BlockCount(H);
  const std::vector<RecvRow>& recv = layout.recv[d].rows;
  const int64_t n = static_cast<int64_t>(recv.size());
  *rows = HostRows(fp8.enabled ? ElementType::kE4m3 : x[0].type(), n, H);
  scales->assign(fp8.enabled ? static_cast<size_t>(n) * blocks : 0, 0.0f);
  std::vector<float> values(H);
  for (int64_t r = 0; r < n; ++r) {
    if (recv[r].isPadding()) continue;
    const HostRows& src = x[recv[r].srcRank];
    if (!fp8.enabled) {
      std::memcpy(rows->row(r), src.row(recv[r].srcToken), rows->rowBytes());
      continue;
    }
    for (int c = 0; c < H; ++c) values[c] = src.get(recv[r].srcToken, c);
    quantizeRowE4m3(values.data(), H, fp8.powerOfTwoScales, rows->row(r),
                    scales->data() + static_cast<size_t>(r) * blocks);
  }
}

// Probability of token t for `expert` in a routing (0 when the expert is not selected).
float probOf(const RankRouting& routing, int experts, int t, int expert) {
  float prob = 0.0f;
  forEachSelection(routing, experts, t, [&](const Selection& sel) {
    if (sel.expert == expert) prob = sel.prob;
  });
  return prob;
}

void deliverRouting(const GroupLayout& layout, const std::vector<RankRouting>& routings, int d,
                    RankDispatchOutput* out) {
  const GroupShape& shape = layout.shape;
  const int L = shape.localExperts();
  const std::vector<RecvRow>& recv = layout.recv[d].rows;
  const size_t n = recv.size();
  const bool probs = routings[0].hasProbs();
  if (layout.options.layout == OutputLayout::kExpertMajor) {
    if (!probs) return;
    out->probs.assign(n, 0.0f);
    for (size_t r = 0; r < n; ++r)
      if (!recv[r].isPadding())
        out->probs[r] = probOf(routings[recv[r].srcRank], shape.experts, recv[r].srcToken,
                               d * L + recv[r].localExpert);
    return;
  }
  const int width = layout.format == RoutingFormat::kTopk ? layout.topk : L;
  if (layout.format == RoutingFormat::kTopk)
    out->topkIdx.assign(n * width, -1);
  else
    out->routingMap.assign(n * width, 0);
  if (probs) out->probs.assign(n * width, 0.0f);
  for (size_t r = 0; r < n; ++r) {
    forEachSelection(routings[recv[r].srcRank], shape.experts, recv[r].srcToken,
                     [&](const Selection& sel) {
                       if (shape.ownerOf(sel.expert) != d) return;
                       const int local = sel.expert - d * L;
                       const size_t column = layout.format == RoutingFormat::kTopk ? sel.slot : local;
                       if (layout.format == RoutingFormat::kTopk)
                         out->topkIdx[r * width + column] = local;
                       else
                         out->routingMap[r * width + column] = 1;
                       if (probs) out->probs[r * width + column] = sel.prob;
                     });
  }
}

}  // namespace

Status referenceDispatchRows(const GroupLayout& layout, const std::vector<HostRows>& x,
                             const Fp8Options& fp8, std::vector<HostRows>* rows,
                             std::vector<std::vector<float>>* scales) {
  if (Status s = checkTokenRows(layout, x); !s.isOk()) return s;
  const int R = layout.shape.ranks;
  rows->assign(R, HostRows());
  scales->assign(R, {});
  for (int d = 0; d < R; ++d) moveRows(layout, x, fp8, d, &(*rows)[d], &(*scales)[d]);
  return Status::ok();
}

Status referenceDispatch(const GroupLayout& layout, const std::vector<RankRouting>& routings,
                         const std::vector<HostRows>& x, const Fp8Options& fp8,
                         std::vector<RankDispatchOutput>* out) {
  if (static_cast<int>(routings.size()) != layout.shape.ranks)
    return Status::invalidArgument(
        format("%zu routings for %d ranks", routings.size(), layout.shape.ranks));
  std::vector<HostRows> rows;
  std::vector<std::vector<float>> scales;
  if (Status s = referenceDispatchRows(layout, x, fp8, &rows, &scales); !s.isOk()) return s;
  out->assign(layout.shape.ranks, RankDispatchOutput());
  for (int d = 0; d < layout.shape.ranks; ++d) {
    RankDispatchOutput& rank = (*out)[d];
    rank.x = std::move(rows[d]);
    rank.scales = std::move(scales[d]);
    rank.tokensPerExpert = layout.recv[d].tokensPerExpert;
    rank.overflow = layout.recv[d].overflow;
    deliverRouting(layout, routings, d, &rank);
  }
  return Status::ok();
}

Status referenceCombine(const GroupLayout& layout, const std::vector<HostRows>& rows,
                        const CombineOrder& order, std::vector<HostRows>* out) {
  const GroupShape& shape = layout.shape;
  const int H = shape.hidden;
  if (static_cast<int>(rows.size()) != shape.ranks)
    return Status::invalidArgument(format("%zu row tensors for %d ranks", rows.size(), shape.ranks));
  for (int d = 0; d < shape.ranks; ++d) {
    if (rows[d].type() == ElementType::kE4m3 || rows[d].type() != rows[0].type())
      return Status::invalidArgument(
          format("rank %d: combine rows must be bf16 or fp32, the same on every rank", d));
    if (rows[d].cols() != H || rows[d].rows() < layout.recvRows(d))
      return Status::invalidArgument(format("rank %d: combine input is [%lld,%d], needs [>=%lld,%d]",
                                            d, (long long)rows[d].rows(), rows[d].cols(),
                                            (long long)layout.recvRows(d), H));
  }
  const int domain = order.ranksPerDomain > 0 ? order.ranksPerDomain : shape.ranks;
  const ElementType type = rows[0].type();
  auto roundToRow = [type](float v) { return type == ElementType::kBf16 ? bf16ToFloat(floatToBf16(v)) : v; };
  out->assign(shape.ranks, HostRows());
  std::vector<float> total(H), domainPartial(H), rankPartial(H);
  for (int s = 0; s < shape.ranks; ++s) {
    HostRows& result = (*out)[s];
    result = HostRows(type, layout.tokensPerRank[s], H);
    for (int t = 0; t < layout.tokensPerRank[s]; ++t) {
      // refs are ordered by destination rank, then row: group them by domain, then by rank.
      const std::vector<RowRef>& refs = layout.sentTo[s][t];
      std::fill(total.begin(), total.end(), 0.0f);
      size_t i = 0;
      while (i < refs.size()) {
        const int dom = refs[i].dstRank / domain;
        std::fill(domainPartial.begin(), domainPartial.end(), 0.0f);
        while (i < refs.size() && refs[i].dstRank / domain == dom) {
          const int d = refs[i].dstRank;
          std::fill(rankPartial.begin(), rankPartial.end(), 0.0f);
          for (; i < refs.size() && refs[i].dstRank == d; ++i)
            for (int c = 0; c < H; ++c) rankPartial[c] += rows[d].get(refs[i].row, c);
          for (int c = 0; c < H; ++c) domainPartial[c] += roundToRow(rankPartial[c]);
        }
        for (int c = 0; c < H; ++c) total[c] += roundToRow(domainPartial[c]);
      }
      for (int c = 0; c < H; ++c) result.set(t, c, total[c]);
    }
  }
  return Status::ok();
}

Status referenceProbsGrad(const GroupLayout& layout, const std::vector<RankRouting>& routings,
                          const std::vector<std::vector<float>>& gradRecvProbs,
                          std::vector<std::vector<float>>* out) {
  const GroupShape& shape = layout.shape;
  const int L = shape.localExperts();
  const bool expertMajor = layout.options.layout == OutputLayout::kExpertMajor;
  const int rowWidth = expertMajor ? 1 : (layout.format == RoutingFormat::kTopk ? layout.topk : L);
  if (static_cast<int>(gradRecvProbs.size()) != shape.ranks ||
      static_cast<int>(routings.size()) != shape.ranks)
    return Status::invalidArgument("probs gradient needs one routing and one gradient per rank");
  for (int d = 0; d < shape.ranks; ++d)
    if (gradRecvProbs[d].size() < static_cast<size_t>(layout.recvRows(d)) * rowWidth)
      return Status::invalidArgument(format("rank %d: probs gradient holds %zu values, needs %lld",
                                            d, gradRecvProbs[d].size(),
                                            (long long)(layout.recvRows(d) * rowWidth)));
  out->assign(shape.ranks, {});
  for (int s = 0; s < shape.ranks; ++s) {
    const RankRouting& routing = routings[s];
    const int width = routing.slots(shape.experts);
    std::vector<float>& grad = (*out)[s];
    grad.assign(static_cast<size_t>(routing.numTokens) * width, 0.0f);
    for (int t = 0; t < routing.numTokens; ++t) {
      forEachSelection(routing, shape.experts, t, [&](const Selection& sel) {
        const int d = shape.ownerOf(sel.expert);
        const int local = sel.expert - d * L;
        for (const RowRef& ref : layout.sentTo[s][t]) {
          if (ref.dstRank != d) continue;
          if (expertMajor && layout.recv[d].rows[ref.row].localExpert != local) continue;
          const size_t column = expertMajor ? 0
                                : layout.format == RoutingFormat::kTopk ? sel.slot
                                                                        : local;
          grad[static_cast<size_t>(t) * width + sel.slot] =
              gradRecvProbs[d][static_cast<size_t>(ref.row) * rowWidth + column];
        }
      });
    }
  }
  return Status::ok();
}

}  // namespace nccl_moe
