#include "reference/count_first_layout.h"

#include <algorithm>

namespace nccl_moe {

namespace {

int64_t roundUp(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

}  // namespace

void countOwnTokens(const GroupShape& shape, const RankRouting& routing, SourceCounts* counts,
                    SourcePositions* positions) {
  const int R = shape.ranks, T = routing.numTokens;
  counts->tokensTo.assign(R, 0);
  counts->pairsOfExpert.assign(shape.experts, 0);
  positions->width = routing.slots(shape.experts);
  positions->pairPosition.assign(static_cast<size_t>(T) * R, -1);
  positions->rowPosition.assign(static_cast<size_t>(T) * positions->width, -1);
  std::vector<char> hits(R);
  for (int t = 0; t < T; ++t) {
    std::fill(hits.begin(), hits.end(), 0);
    // Token order is the canonical order inside every (source, destination) and (source,
    // expert) run, so a running count per destination and per expert is the position.
    forEachSelection(routing, shape.experts, t, [&](const Selection& sel) {
      positions->rowPosition[static_cast<size_t>(t) * positions->width + sel.slot] =
          counts->pairsOfExpert[sel.expert]++;
      hits[shape.ownerOf(sel.expert)] = 1;
    });
    for (int d = 0; d < R; ++d)
      if (hits[d]) positions->pairPosition[static_cast<size_t>(t) * R + d] = counts->tokensTo[d]++;
  }
}

GroupOffsets offsetsFromCounts(const GroupShape& shape, const LayoutOptions& options,
                               const std::vector<SourceCounts>& counts) {
  const int R = shape.ranks, L = shape.localExperts();
  const int64_t pad = options.effectivePad();
  GroupOffsets offsets;
  offsets.pairBase.assign(static_cast<size_t>(R) * R, 0);
  offsets.rowBase.assign(static_cast<size_t>(R) * R * L, 0);
  offsets.segmentStart.assign(static_cast<size_t>(R) * L, 0);
  offsets.segmentPairs.assign(static_cast<size_t>(R) * L, 0);
  offsets.segmentPadded.assign(static_cast<size_t>(R) * L, 0);
  for (int d = 0; d < R; ++d) {
    // Pair slots: by source rank, so source s starts after the tokens of every lower source.
    int64_t pairs = 0;
    for (int s = 0; s < R; ++s) {
      offsets.pairBase[static_cast<size_t>(d) * R + s] = pairs;
      pairs += counts[s].tokensTo[d];
    }
    // Expert-major: segments per local expert in order, each padded; inside one, by source.
    int64_t start = 0;
    for (int l = 0; l < L; ++l) {
      const int expert = d * L + l;
      int64_t within = 0;
      for (int s = 0; s < R; ++s) {
        offsets.rowBase[(static_cast<size_t>(d) * R + s) * L + l] = start + within;
        within += counts[s].pairsOfExpert[expert];
      }
      const size_t dl = static_cast<size_t>(d) * L + l;
      offsets.segmentStart[dl] = start;
      offsets.segmentPairs[dl] = within;
      offsets.segmentPadded[dl] = roundUp(within, pad);
      start += offsets.segmentPadded[dl];
    }
  }
  return offsets;
}

Status buildCountFirstLayout(const GroupShape& shape, const std::vector<RankRouting>& routings,
                             const LayoutOptions& options, GroupLayout* layout) {
  if (Status s = checkLayoutOptions(options); !s.isOk()) return s;
  if (Status s = checkGroupRouting(shape, routings); !s.isOk()) return s;
  const int R = shape.ranks, L = shape.localExperts();
  const bool expertMajor = options.layout == OutputLayout::kExpertMajor;

  // Step 1 on every source; step 2 is the exchange of `counts`.
  std::vector<SourceCounts> counts(R);
  std::vector<SourcePositions> positions(R);
  for (int s = 0; s < R; ++s) countOwnTokens(shape, routings[s], &counts[s], &positions[s]);
  // Step 3, the same on every rank.
  const GroupOffsets offsets = offsetsFromCounts(shape, options, counts);

  GroupLayout result;
  result.shape = shape;
  result.options = options;
  result.format = routings[0].format;
  result.topk = routings[0].topk;
  result.recv.resize(R);
  result.sentTo.resize(R);
  for (int s = 0; s < R; ++s) {
    result.tokensPerRank.push_back(routings[s].numTokens);
    result.sentTo[s].resize(routings[s].numTokens);
  }
  // What each destination learns from the counts alone: its row count, segments, reported counts.
  for (int d = 0; d < R; ++d) {
    RankRecvLayout& recv = result.recv[d];
    recv.pairsPerExpert.assign(L, 0);
    recv.tokensPerExpert.assign(L, 0);
    recv.segmentStart.assign(L, 0);
    for (int l = 0; l < L; ++l) {
      const size_t dl = static_cast<size_t>(d) * L + l;
      recv.pairsPerExpert[l] = offsets.segmentPairs[dl];
      if (expertMajor) {
        recv.segmentStart[l] = offsets.segmentStart[dl];
        recv.tokensPerExpert[l] =
            options.budgeted()
                ? std::clamp<int64_t>(options.rowBudget - offsets.segmentStart[dl], 0, offsets.segmentPadded[dl])
                : offsets.segmentPadded[dl];
      } else {
        recv.tokensPerExpert[l] = offsets.segmentPairs[dl];
      }
    }
    if (expertMajor) {
      const size_t last = static_cast<size_t>(d) * L + L - 1;
      recv.rowsNeeded = L > 0 ? offsets.segmentStart[last] + offsets.segmentPadded[last] : 0;
      recv.overflow = options.budgeted() && recv.rowsNeeded > options.rowBudget;
      const int64_t kept = options.budgeted() ? std::min(recv.rowsNeeded, options.rowBudget) : recv.rowsNeeded;
      recv.rows.assign(kept, RecvRow{});  // step 4b: whatever no source writes stays padding
    } else {
      int64_t pairs = 0;
      for (int s = 0; s < R; ++s) pairs += counts[s].tokensTo[d];
      recv.rowsNeeded = pairs;
      recv.rows.assign(pairs, RecvRow{});
    }
  }
  // Step 4: every source writes its own rows' entries at offset + own position.
  for (int s = 0; s < R; ++s) {
    const SourcePositions& mine = positions[s];
    for (int t = 0; t < routings[s].numTokens; ++t) {
      std::vector<RowRef>& sent = result.sentTo[s][t];
      if (!expertMajor) {
        for (int d = 0; d < R; ++d) {
          const int64_t position = mine.pairPosition[static_cast<size_t>(t) * R + d];
          if (position < 0) continue;
          const int64_t slot = offsets.pairBase[static_cast<size_t>(d) * R + s] + position;
          result.recv[d].rows[slot] = RecvRow{s, t, -1};
          sent.push_back({d, slot});
        }
        continue;
      }
      forEachSelection(routings[s], shape.experts, t, [&](const Selection& sel) {
        const int d = shape.ownerOf(sel.expert), l = sel.expert - d * L;
        const int64_t row = offsets.rowBase[(static_cast<size_t>(d) * R + s) * L + l] +
                            mine.rowPosition[static_cast<size_t>(t) * mine.width + sel.slot];
        if (row >= static_cast<int64_t>(result.recv[d].rows.size())) return;  // past the budget: dropped
        result.recv[d].rows[row] = RecvRow{s, t, l};
        sent.push_back({d, row});
      });
      // Combine sums in destination order, then row order (reference/layout.h RowRef).
      std::sort(sent.begin(), sent.end(), [](const RowRef& a, const RowRef& b) {
        return a.dstRank != b.dstRank ? a.dstRank < b.dstRank : a.row < b.row;
      });
    }
  }
  *layout = std::move(result);
  return Status::ok();
}

}  // namespace nccl_moe
