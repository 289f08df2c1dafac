// A CPU model of the sender-positioned low-latency dispatch, the design the LL kernels move to.
// Today every receiver re-derives, from the landed slot headers, where each of its sources' rows
// goes (a warp per (source, local expert) scanning headers, then a grid barrier): chains of
// dependent memory round trips that dominate the latency at small T (RESULTS.md, "Low-latency mode
// after the host-word fix"). Here the sender computes it from its own ids:
//   1. source s, from its ids alone: per destination rank d and local expert l, the number of its
//      rows (its record in d's buffer carries these L counts with T, K and its fault), and per
//      (t, k) the row's index among its rows of that expert, in token order (written into the slot
//      header beside the ids);
//   2. receiver d, once every record arrived: where source s starts in segment l is the sum of the
//      counts of the sources below s (E integers in all, each read once);
//   3. each landed slot's row goes to segment l at start(s, l) + position(t, k).
// The steps take what a kernel of that step would have, so the kernels can follow them line for
// line. The result must be lowLatencyDispatch's layout exactly (tests/unit/test_low_latency_sender.cc).
#pragma once

#include <cstdint>
#include <vector>

#include "misc/status.h"
#include "plan/low_latency_shape.h"
#include "plan/routing.h"
#include "reference/low_latency.h"

namespace nccl_moe {

// Step 1, on one source rank.
struct LowLatencySendPlan {
  std::vector<int32_t> counts;     // [R][L]: this source's rows for local expert l of rank d
  std::vector<int32_t> positions;  // [T][K]: row (t, k)'s index among this source's rows of its
                                   // expert, in token order; -1 for a masked slot
};
// `routing` must be valid for `shape` (lowLatencyDispatch's checks: top-k ids in [-1, E), none twice
// in a token).
LowLatencySendPlan planLowLatencySend(const LowLatencyShape& shape, const RankRouting& routing);

// Step 2, on destination rank d, from every source's counts.
struct LowLatencySegmentStarts {
  std::vector<int32_t> start;   // [R][L]: first row of source s in segment l
  std::vector<int32_t> counts;  // [L]: rows of segment l (recvCount)
};
LowLatencySegmentStarts segmentStartsOf(const LowLatencyShape& shape, const std::vector<LowLatencySendPlan>& plans,
                                        int d);

// Steps 1-3 for the whole group: every rank's layout (counts and source info), validated as
// lowLatencyDispatch validates (nothing written on an error).
Status assembleLowLatencyLayouts(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                                 std::vector<LowLatencyLayout>* layouts);

}  // namespace nccl_moe
