// One rank's routing in host memory, in either format, and the checks every call applies to it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "misc/status.h"
#include "plan/moe_shape.h"

namespace nccl_moe {

struct RankRouting {
  RoutingFormat format = RoutingFormat::kTopk;
  int numTokens = 0;
  int topk = 0;                     // K, top-k format only
  std::vector<int64_t> topkIdx;     // [T,K] global expert id, -1 masks the slot
  std::vector<float> topkProbs;     // [T,K]
  std::vector<uint8_t> routingMap;  // [T,E]
  std::vector<float> denseProbs;    // [T,E]
  bool withProbs = true;            // false: no probabilities travel (their arrays stay empty)

  bool hasProbs() const { return withProbs; }
  // Width of one token's routing row: K (top-k) or E (map).
  int slots(int experts) const { return format == RoutingFormat::kTopk ? topk : experts; }
};

// One (token, expert) selection; `slot` is k (top-k) or the expert id (map).
struct Selection {
  int expert;
  int slot;
  float prob;
};

// Calls visit(Selection) for each selected expert of token t, in slot order.
template <class Visit>
void forEachSelection(const RankRouting& routing, int experts, int t, Visit&& visit) {
  const int width = routing.slots(experts);
  for (int s = 0; s < width; ++s) {
    const size_t i = static_cast<size_t>(t) * width + s;
    if (routing.format == RoutingFormat::kTopk) {
      const int64_t e = routing.topkIdx[i];
      if (e < 0) continue;
      visit(Selection{static_cast<int>(e), s, routing.hasProbs() ? routing.topkProbs[i] : 0.0f});
    } else if (routing.routingMap[i]) {
      visit(Selection{s, s, routing.hasProbs() ? routing.denseProbs[i] : 0.0f});
    }
  }
}

// What is wrong with a routing's contents. The GPU layout kernel reports the same record, so a
// bad routing gets the same message whichever path found it.
enum class RoutingFault : int32_t {
  kNone = 0,
  kExpertOutOfRange,   // value: the id
  kDuplicateExpert,    // value: the id
  kProbNotFinite,      // value: the float's bits
  kMapValueNotBool,    // value: the byte
  kTooManyExperts,     // routing map: more than maxTopk experts in one token; value: the expert
};

struct RoutingFaultRecord {
  RoutingFault fault = RoutingFault::kNone;
  int32_t token = -1;
  int32_t slot = -1;
  int64_t value = 0;
};

std::string describeRoutingFault(const RoutingFaultRecord& record, int rank, const GroupShape& shape);

// Shape checks (sizes of the arrays against T, K, E and the group's limits).
Status checkRoutingShape(const GroupShape& shape, const RankRouting& routing, int rank);
// Content checks; the first fault in token, then slot order.
RoutingFaultRecord findRoutingFault(const GroupShape& shape, const RankRouting& routing);
// Both, plus the rules that tie ranks together (same format, same K).
Status checkGroupRouting(const GroupShape& shape, const std::vector<RankRouting>& routings);

}  // namespace nccl_moe
