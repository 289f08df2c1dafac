#include "reference/low_latency.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "reference/fp8.h"

namespace nccl_moe {

namespace {

// What the host checks before anything moves: the shape and the routings' sizes.
Status checkRoutingShapes(const LowLatencyShape& shape, const std::vector<RankRouting>& routings) {
  if (Status s = checkLowLatencyShape(shape); !s.isOk()) return s;
  if (static_cast<int>(routings.size()) != shape.ranks)
    return Status::invalidArgument(
        format("%zu routings given for a group of %d ranks", routings.size(), shape.ranks));
  for (int r = 0; r < shape.ranks; ++r) {
    const RankRouting& routing = routings[r];
    if (routing.format != RoutingFormat::kTopk)
      return Status::invalidArgument(format("rank %d: the low-latency mode takes top-k ids only", r));
    if (routing.topk < 1 || routing.topk > shape.maxTopk)
      return Status::invalidArgument(
          format("rank %d: topk=%d must lie in [1, maxTopk=%d]", r, routing.topk, shape.maxTopk));
    if (routing.topk != routings[0].topk)
      return Status::invalidArgument(format(
          "rank %d has topk=%d, rank 0 topk=%d: K must match across the group", r, routing.topk,
          routings[0].topk));
    if (routing.numTokens < 0 || routing.numTokens > shape.maxTokens)
      return Status::invalidArgument(format("rank %d: numTokens=%d must lie in [0, lowLatencyMaxTokens=%d]",
                                            r, routing.numTokens, shape.maxTokens));
    const size_t want = static_cast<size_t>(routing.numTokens) * routing.topk;
    if (routing.topkIdx.size() != want)
      return Status::invalidArgument(format("rank %d: topkIdx holds %zu ids, expected T x K = %zu", r,
                                            routing.topkIdx.size(), want));
  }
  return Status::ok();
}

// What the device finds in the ids: the first fault in (rank, token, slot) order.
Status checkRoutingContents(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                            LowLatencyFault* fault) {
  for (int r = 0; r < shape.ranks; ++r) {
    RankRouting idsOnly = routings[r];
    idsOnly.withProbs = false;  // LL dispatch reads no probabilities
    const RoutingFaultRecord record = findRoutingFault(shape.group(), idsOnly);
    if (record.fault == RoutingFault::kNone) continue;
    if (fault) *fault = {r, record};
    return Status::invalidArgument(describeRoutingFault(record, r, shape.group()));
  }
  return Status::ok();
}


Status checkTokenRows(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                      const std::vector<HostRows>& x, const char* name) {
  if (static_cast<int>(x.size()) != shape.ranks)
    return Status::invalidArgument(format("%zu %s tensors for %d ranks", x.size(), name, shape.ranks));
  for (int s = 0; s < shape.ranks; ++s) {
    if (x[s].type() != ElementType::kBf16)
      return Status::invalidArgument(format("rank %d: %s must be bf16", s, name));
    if (x[s].rows() != routings[s].numTokens || x[s].cols() != shape.hidden)
      return Status::invalidArgument(format("rank %d: %s is [%lld,%d], expected [%d,%d]", s, name,
                                            (long long)x[s].rows(), x[s].cols(),
                                            routings[s].numTokens, shape.hidden));
  }
  return Status::ok();
}

Status checkWeights(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                    const std::vector<std::vector<float>>* weights) {
  if (!weights) return Status::ok();
  if (static_cast<int>(weights->size()) != shape.ranks)
    return Status::invalidArgument(format("%zu weight tensors for %d ranks", weights->size(), shape.ranks));
  for (int s = 0; s < shape.ranks; ++s) {
    const size_t want = static_cast<size_t>(routings[s].numTokens) * routings[s].topk;
    if ((*weights)[s].size() != want)
      return Status::invalidArgument(format("rank %d: weights hold %zu values, expected T x K = %zu",
                                            s, (*weights)[s].size(), want));
  }
  return Status::ok();
}

// Every rank's receive layout: segment l of rank d lists the (s, t, k) selecting expert d*L + l,
// in (s, t) order because that is the order they are visited in.
std::vector<LowLatencyLayout> buildLayouts(const LowLatencyShape& shape, const std::vector<RankRouting>& routings) {
  const int L = shape.localExperts();
  const int64_t P = shape.segmentRows();
  std::vector<LowLatencyLayout> layouts(shape.ranks);
  for (LowLatencyLayout& layout : layouts) {
    layout.counts.assign(L, 0);
    layout.srcInfo.assign(static_cast<size_t>(L) * P * 3, -1);
  }
  for (int s = 0; s < shape.ranks; ++s) {
    const RankRouting& routing = routings[s];
    for (int t = 0; t < routing.numTokens; ++t)
      for (int k = 0; k < routing.topk; ++k) {
        const int64_t e = routing.topkIdx[static_cast<size_t>(t) * routing.topk + k];
        if (e < 0) continue;
        const int d = shape.ownerOf(static_cast<int>(e));
        const int l = static_cast<int>(e) - d * L;
        LowLatencyLayout& layout = layouts[d];
        const int64_t row = l * P + layout.counts[l]++;
        layout.srcInfo[row * 3 + 0] = s;
        layout.srcInfo[row * 3 + 1] = t;
        layout.srcInfo[row * 3 + 2] = k;
      }
  }
  return layouts;
}

// The rows of every rank's layout, filled from the token rows of their sources: copies, FP8
// quantisation, or (backward) bf16(fp32(w x g)).
void fillRows(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
              const std::vector<LowLatencyLayout>& layouts, const std::vector<HostRows>& x, bool fp8,
              const std::vector<std::vector<float>>* weights, std::vector<HostRows>* rows,
              std::vector<std::vector<float>>* scales) {
  const int L = shape.localExperts(), H = shape.hidden, B = shape.scaleBlocks();
  const int64_t P = shape.segmentRows();
  rows->assign(shape.ranks, HostRows());
  if (scales) scales->assign(shape.ranks, {});
  std::vector<float> values(H), rowScales(B);
  for (int d = 0; d < shape.ranks; ++d) {
    HostRows& out = (*rows)[d];
    out = HostRows(fp8 ? ElementType::kE4m3 : ElementType::kBf16, L * P, H);
    if (fp8) (*scales)[d].assign(static_cast<size_t>(L) * B * shape.scalePlaneRows(), 0.0f);
    for (int l = 0; l < L; ++l)
      for (int64_t i = 0; i < layouts[d].counts[l]; ++i) {
        const int64_t row = l * P + i;
        const int s = layouts[d].srcInfo[row * 3 + 0];
        const int t = layouts[d].srcInfo[row * 3 + 1];
        const int k = layouts[d].srcInfo[row * 3 + 2];
        if (weights) {
          const float w = (*weights)[s][static_cast<size_t>(t) * routings[s].topk + k];
          for (int c = 0; c < H; ++c) out.set(row, c, w * x[s].get(t, c));
        } else if (!fp8) {
          std::memcpy(out.row(row), x[s].row(t), out.rowBytes());
        } else {
          for (int c = 0; c < H; ++c) values[c] = x[s].get(t, c);
          quantizeRowE4m3(values.data(), H, shape.powerOfTwoScales, out.row(row), rowScales.data());
          for (int b = 0; b < B; ++b) (*scales)[d][lowLatencyScaleIndex(shape, l, i, b)] = rowScales[b];
        }
      }
  }
}

}  // namespace

Status checkLowLatencyRoutings(const LowLatencyShape& shape, const std::vector<RankRouting>& routings) {
  if (Status s = checkRoutingShapes(shape, routings); !s.isOk()) return s;
  return checkRoutingContents(shape, routings, nullptr);
}

int64_t lowLatencyScaleIndex(const LowLatencyShape& shape, int l, int64_t i, int b) {
  return (static_cast<int64_t>(l) * shape.scaleBlocks() + b) * shape.scalePlaneRows() + i;
}

Status lowLatencyDispatch(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                          const std::vector<HostRows>& x, std::vector<LowLatencyRankOutput>* out,
                          LowLatencyFault* fault) {
  if (Status s = checkRoutingShapes(shape, routings); !s.isOk()) return s;
  if (Status s = checkTokenRows(shape, routings, x, "x"); !s.isOk()) return s;
  if (Status s = checkRoutingContents(shape, routings, fault); !s.isOk()) return s;
  std::vector<LowLatencyLayout> layouts = buildLayouts(shape, routings);
  std::vector<HostRows> rows;
  std::vector<std::vector<float>> scales;
  fillRows(shape, routings, layouts, x, shape.fp8, nullptr, &rows, &scales);
  out->assign(shape.ranks, LowLatencyRankOutput());
  for (int d = 0; d < shape.ranks; ++d) {
    (*out)[d].x = std::move(rows[d]);
    if (shape.fp8) (*out)[d].scales = std::move(scales[d]);
    (*out)[d].layout = std::move(layouts[d]);
  }
  return Status::ok();
}

Status lowLatencyCombine(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                         const std::vector<LowLatencyLayout>& layouts, const std::vector<HostRows>& y,
                         const std::vector<std::vector<float>>* weights, std::vector<HostRows>* out) {
  if (Status s = checkLowLatencyRoutings(shape, routings); !s.isOk()) return s;
  if (Status s = checkWeights(shape, routings, weights); !s.isOk()) return s;
  const int R = shape.ranks, L = shape.localExperts(), H = shape.hidden, D = shape.domainSize();
  const int64_t P = shape.segmentRows();
  if (static_cast<int>(y.size()) != R || static_cast<int>(layouts.size()) != R)
    return Status::invalidArgument(format("combine needs rows and a layout for each of the %d ranks", R));
  for (int d = 0; d < R; ++d)
    if (y[d].type() != ElementType::kBf16 || y[d].rows() != L * P || y[d].cols() != H)
      return Status::invalidArgument(format("rank %d: expert outputs must be bf16 [%lld,%d]", d,
                                            (long long)(L * P), H));
  // The layouts must be the ones this routing's dispatch produced (the defined part of them).
  const std::vector<LowLatencyLayout> expected = buildLayouts(shape, routings);
  for (int d = 0; d < R; ++d) {
    bool same = layouts[d].counts == expected[d].counts &&
                layouts[d].srcInfo.size() == expected[d].srcInfo.size();
    for (int l = 0; same && l < L; ++l)
      same = std::equal(expected[d].srcInfo.begin() + l * P * 3,
                        expected[d].srcInfo.begin() + (l * P + expected[d].counts[l]) * 3,
                        layouts[d].srcInfo.begin() + l * P * 3);
    if (!same)
      return Status::invalidArgument(format(
          "rank %d: the counts and source info given to combine are not the ones dispatch produced "
          "for this routing", d));
  }
  // Where the row of each (s, t, k) lives: rank and row index.
  std::vector<std::vector<int64_t>> rowOf(R);
  for (int s = 0; s < R; ++s) rowOf[s].assign(static_cast<size_t>(routings[s].numTokens) * routings[s].topk, -1);
  for (int d = 0; d < R; ++d)
    for (int l = 0; l < L; ++l)
      for (int64_t i = 0; i < layouts[d].counts[l]; ++i) {
        const int64_t row = l * P + i;
        const int32_t* info = &layouts[d].srcInfo[row * 3];
        rowOf[info[0]][static_cast<size_t>(info[1]) * routings[info[0]].topk + info[2]] = row;
      }

  std::vector<HostRows> result(R);
  std::vector<float> acc(H), total(H);
  for (int s = 0; s < R; ++s) {
    const RankRouting& routing = routings[s];
    const int K = routing.topk;
    result[s] = HostRows(ElementType::kBf16, routing.numTokens, H);
    for (int t = 0; t < routing.numTokens; ++t) {
      // Node partials in ascending domain order; each is the fmaf chain over that domain's slots
      // in slot order, from +0. One domain: the one partial is the whole sum.
      bool first = true;
      std::fill(total.begin(), total.end(), 0.0f);
      for (int m = 0; m < shape.domains(); ++m) {
        bool any = false;
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int k = 0; k < K; ++k) {
          const size_t slot = static_cast<size_t>(t) * K + k;
          const int64_t e = routing.topkIdx[slot];
          if (e < 0) continue;
          const int d = shape.ownerOf(static_cast<int>(e));
          if (d / D != m) continue;
          any = true;
          const float w = weights ? (*weights)[s][slot] : 1.0f;
          for (int c = 0; c < H; ++c) acc[c] = std::fma(w, y[d].get(rowOf[s][slot], c), acc[c]);
        }
        if (!any) continue;
        for (int c = 0; c < H; ++c) {
          const float partial = bf16ToFloat(floatToBf16(acc[c]));
          total[c] = first ? partial : total[c] + partial;
        }
        first = false;
      }
      for (int c = 0; c < H; ++c) result[s].set(t, c, total[c]);
    }
  }
  *out = std::move(result);
  return Status::ok();
}

Status lowLatencyCombineBackward(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                                 const std::vector<HostRows>& gradOut,
                                 const std::vector<std::vector<float>>* weights,
                                 std::vector<HostRows>* gradRows) {
  if (shape.fp8)
    return Status::invalidUsage(
        "combine's backward is a BF16 dispatch of the gradient: it needs a communicator whose "
        "low-latency dispatch is BF16");
  if (Status s = checkLowLatencyRoutings(shape, routings); !s.isOk()) return s;
  if (Status s = checkTokenRows(shape, routings, gradOut, "gradient"); !s.isOk()) return s;
  if (Status s = checkWeights(shape, routings, weights); !s.isOk()) return s;
  const std::vector<LowLatencyLayout> layouts = buildLayouts(shape, routings);
  fillRows(shape, routings, layouts, gradOut, false, weights, gradRows, nullptr);
  return Status::ok();
}

Status lowLatencyTwoHop(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                        LowLatencyTwoHop* plan) {
  if (Status s = checkLowLatencyRoutings(shape, routings); !s.isOk()) return s;
  LowLatencyTwoHop result;
  const int R = shape.ranks, M = shape.domains(), D = shape.domainSize();
  result.domains = M;
  result.ranksPerDomain = D;
  result.network.assign(R, std::vector<std::vector<LowLatencyNetworkRow>>(M));
  result.networkRowsSent.assign(R, 0);
  result.networkRowsRelayed.assign(R, 0);
  for (int s = 0; s < R; ++s) {
    const RankRouting& routing = routings[s];
    const int home = shape.domainOf(s);
    for (int t = 0; t < routing.numTokens; ++t) {
      std::vector<LowLatencyNetworkRow> perDomain(M);
      for (int k = 0; k < routing.topk; ++k) {
        const int64_t e = routing.topkIdx[static_cast<size_t>(t) * routing.topk + k];
        if (e < 0) continue;
        const int d = shape.ownerOf(static_cast<int>(e));
        const int m = shape.domainOf(d);
        if (m == home) continue;
        LowLatencyNetworkRow& row = perDomain[m];
        row.srcToken = t;
        row.slots.push_back(k);
        row.dstRanks.push_back(d);
      }
      for (int m = 0; m < M; ++m) {
        LowLatencyNetworkRow& row = perDomain[m];
        if (row.srcToken < 0) continue;
        std::sort(row.dstRanks.begin(), row.dstRanks.end());
        row.dstRanks.erase(std::unique(row.dstRanks.begin(), row.dstRanks.end()), row.dstRanks.end());
        ++result.networkRows;
        ++result.networkRowsSent[s];
        ++result.networkRowsRelayed[result.railPeer(s, m)];
        result.network[s][m].push_back(std::move(row));
      }
    }
  }
  *plan = std::move(result);
  return Status::ok();
}

}  // namespace nccl_moe
