// Seeded routing generators for tests, the demo and benchmarks: uniform, skewed (Zipf-like),
// masked slots, and conversion between the two routing formats.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "plan/routing.h"
#include "reference/host_rows.h"

namespace nccl_moe {

struct RoutingRecipe {
  int numTokens = 0;
  int topk = 1;
  int experts = 1;
  double skew = 0.0;         // 0: uniform; s > 0: expert e drawn with weight 1/(e+1)^s
  double maskedFraction = 0.0;  // probability that a slot is -1
  bool withProbs = true;
};

// Top-k routing: K distinct experts per token (drawn without replacement), positive probs
// summing to 1 over the kept slots.
RankRouting randomTopkRouting(const RoutingRecipe& recipe, std::mt19937_64& rng);

// The same selections as a routing map [T,E] with dense probs (0 where not routed).
RankRouting toRoutingMap(const RankRouting& topk, int experts);

// [T, H] rows with values uniform in [-range, range], rounded to `type`.
HostRows randomRows(ElementType type, int64_t rows, int hidden, float range, std::mt19937_64& rng);

}  // namespace nccl_moe
