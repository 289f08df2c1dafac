#include "reference/layout.h"

#include <algorithm>

namespace nccl_moe {

namespace {

int64_t roundUp(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// Per-rank layout: a row on rank d for each (s, t) with any selected expert owned by d.
void buildPerRank(const GroupShape& shape, const std::vector<RankRouting>& routings,
                  GroupLayout* layout) {
  const int L = shape.localExperts();
  std::vector<char> hitsRank(shape.ranks);
  for (int s = 0; s < shape.ranks; ++s) {
    for (int t = 0; t < routings[s].numTokens; ++t) {
      std::fill(hitsRank.begin(), hitsRank.end(), 0);
      forEachSelection(routings[s], shape.experts, t, [&](const Selection& sel) {
        const int d = shape.ownerOf(sel.expert);
        hitsRank[d] = 1;
        ++layout->recv[d].pairsPerExpert[sel.expert - d * L];
      });
      for (int d = 0; d < shape.ranks; ++d) {
        if (!hitsRank[d]) continue;
        RankRecvLayout& recv = layout->recv[d];
        layout->sentTo[s][t].push_back({d, static_cast<int64_t>(recv.rows.size())});
        recv.rows.push_back({s, t, -1});
      }
    }
  }
  for (RankRecvLayout& recv : layout->recv) {
    recv.tokensPerExpert = recv.pairsPerExpert;
    recv.rowsNeeded = static_cast<int64_t>(recv.rows.size());
  }
}

// Expert-major layout: segments per local expert, padded, clipped by the budget.
void buildExpertMajor(const GroupShape& shape, const std::vector<RankRouting>& routings,
                      const LayoutOptions& options, GroupLayout* layout) {
  const int L = shape.localExperts();
  const int64_t pad = options.effectivePad();
  // Rows of each (destination rank, local expert) segment, already in (s, t) order.
  std::vector<std::vector<RecvRow>> segments(static_cast<size_t>(shape.ranks) * L);
  for (int s = 0; s < shape.ranks; ++s)
    for (int t = 0; t < routings[s].numTokens; ++t)
      forEachSelection(routings[s], shape.experts, t, [&](const Selection& sel) {
        const int d = shape.ownerOf(sel.expert);
        const int l = sel.expert - d * L;
        segments[static_cast<size_t>(d) * L + l].push_back({s, t, l});
      });

  for (int d = 0; d < shape.ranks; ++d) {
    RankRecvLayout& recv = layout->recv[d];
    int64_t start = 0;
    for (int l = 0; l < L; ++l) {
      const std::vector<RecvRow>& segment = segments[static_cast<size_t>(d) * L + l];
      const int64_t pairs = static_cast<int64_t>(segment.size());
      const int64_t padded = roundUp(pairs, pad);
      const int64_t kept = options.budgeted()
                               ? std::clamp<int64_t>(options.rowBudget - start, 0, padded)
                               : padded;
      recv.pairsPerExpert[l] = pairs;
      recv.segmentStart[l] = start;
      recv.tokensPerExpert[l] = kept;
      for (int64_t i = 0; i < kept; ++i) {
        if (i < pairs) {
          const RecvRow& row = segment[i];
          layout->sentTo[row.srcRank][row.srcToken].push_back({d, static_cast<int64_t>(recv.rows.size())});
          recv.rows.push_back(row);
        } else {
          recv.rows.push_back(RecvRow{});
        }
      }
      start += padded;
    }
    recv.rowsNeeded = start;
    recv.overflow = options.budgeted() && start > options.rowBudget;
  }
}

}  // namespace

Status buildGroupLayout(const GroupShape& shape, const std::vector<RankRouting>& routings,
                        const LayoutOptions& options, GroupLayout* layout) {
  if (Status s = checkLayoutOptions(options); !s.isOk()) return s;
  if (Status s = checkGroupRouting(shape, routings); !s.isOk()) return s;

  GroupLayout result;
  result.shape = shape;
  result.options = options;
  result.format = routings[0].format;
  result.topk = routings[0].topk;
  const int L = shape.localExperts();
  result.recv.resize(shape.ranks);
  for (RankRecvLayout& recv : result.recv) {
    recv.tokensPerExpert.assign(L, 0);
    recv.pairsPerExpert.assign(L, 0);
    recv.segmentStart.assign(L, 0);
  }
  result.sentTo.resize(shape.ranks);
  for (int s = 0; s < shape.ranks; ++s) {
    result.tokensPerRank.push_back(routings[s].numTokens);
    result.sentTo[s].resize(routings[s].numTokens);
  }
  if (options.layout == OutputLayout::kPerRank)
    buildPerRank(shape, routings, &result);
  else
    buildExpertMajor(shape, routings, options, &result);
  *layout = std::move(result);
  return Status::ok();
}

LayoutTraffic summarizeTraffic(const GroupLayout& layout) {
  LayoutTraffic traffic;
  for (int d = 0; d < layout.shape.ranks; ++d) {
    const RankRecvLayout& recv = layout.recv[d];
    for (const RecvRow& row : recv.rows) {
      ++traffic.rowsReceived;
      if (row.isPadding())
        ++traffic.paddingRows;
      else if (row.srcRank != d)
        ++traffic.rowsToOtherRanks;
    }
    for (int64_t pairs : recv.pairsPerExpert) traffic.pairsRouted += pairs;
  }
  return traffic;
}

}  // namespace nccl_moe
