#include "reference/low_latency_sender.h"

namespace nccl_moe {

LowLatencySendPlan planLowLatencySend(const LowLatencyShape& shape, const RankRouting& routing) {
  const int L = shape.localExperts(), K = routing.topk;
  LowLatencySendPlan plan;
  plan.counts.assign(static_cast<size_t>(shape.ranks) * L, 0);
  plan.positions.assign(static_cast<size_t>(routing.numTokens) * K, -1);
  // Token order: a token holds each expert at most once, so the running count of an expert is the
  // index of the token's row among the source's rows of that expert.
  for (int t = 0; t < routing.numTokens; ++t)
    for (int k = 0; k < K; ++k) {
      const int64_t e = routing.topkIdx[static_cast<size_t>(t) * K + k];
      if (e < 0) continue;
      plan.positions[static_cast<size_t>(t) * K + k] = plan.counts[static_cast<size_t>(e)]++;
    }
  return plan;
}

LowLatencySegmentStarts segmentStartsOf(const LowLatencyShape& shape, const std::vector<LowLatencySendPlan>& plans,
                                        int d) {
  const int L = shape.localExperts();
  LowLatencySegmentStarts starts;
  starts.start.assign(static_cast<size_t>(shape.ranks) * L, 0);
  starts.counts.assign(static_cast<size_t>(L), 0);
  for (int l = 0; l < L; ++l) {
    int32_t running = 0;
    for (int s = 0; s < shape.ranks; ++s) {
      starts.start[static_cast<size_t>(s) * L + l] = running;
      running += plans[static_cast<size_t>(s)].counts[static_cast<size_t>(d) * L + l];
    }
    starts.counts[static_cast<size_t>(l)] = running;
  }
  return starts;
}

Status assembleLowLatencyLayouts(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                                 std::vector<LowLatencyLayout>* layouts) {
  if (Status s = checkLowLatencyRoutings(shape, routings); !s.isOk()) return s;
  const int R = shape.ranks, L = shape.localExperts();
  const int64_t P = shape.segmentRows();
  std::vector<LowLatencySendPlan> plans;
  for (const RankRouting& routing : routings) plans.push_back(planLowLatencySend(shape, routing));
  std::vector<LowLatencyLayout> out(static_cast<size_t>(R));
  for (int d = 0; d < R; ++d) {
    const LowLatencySegmentStarts starts = segmentStartsOf(shape, plans, d);
    out[d].counts = starts.counts;
    out[d].srcInfo.assign(static_cast<size_t>(L) * P * 3, -1);
    for (int s = 0; s < R; ++s) {
      const RankRouting& routing = routings[static_cast<size_t>(s)];
      const int K = routing.topk;
      for (int t = 0; t < routing.numTokens; ++t)
        for (int k = 0; k < K; ++k) {
          const int64_t e = routing.topkIdx[static_cast<size_t>(t) * K + k];
          if (e < 0 || e / L != d) continue;
          const int l = static_cast<int>(e % L);
          const int64_t i = starts.start[static_cast<size_t>(s) * L + l] +
                            plans[static_cast<size_t>(s)].positions[static_cast<size_t>(t) * K + k];
          int32_t* info = &out[d].srcInfo[static_cast<size_t>((l * P + i) * 3)];
          info[0] = s;
          info[1] = t;
          info[2] = k;
        }
    }
  }
  *layouts = std::move(out);
  return Status::ok();
}

}  // namespace nccl_moe
