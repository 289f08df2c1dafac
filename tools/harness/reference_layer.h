// One MoE layer of a whole EP group on the CPU reference, as the tools check the GPU against it:
// dispatch, an identity "expert" (each received row times the sum of its probabilities), combine.
// Every rank of a tool builds the same group inputs from the same seed, runs this, and compares
// its own device outputs with its rank's part (tools/harness/mismatch.h). Host code only.
#pragma once

#include <vector>

#include "reference/reference.h"

namespace nccl_moe::harness {

// Every rank's routing and tokens: routings[r] and x[r] ([T_r, H]) for r < shape.ranks.
struct GroupInputs {
  GroupShape shape;
  std::vector<RankRouting> routings;
  std::vector<HostRows> x;
};

struct LayerSettings {
  LayoutOptions layout;
  Fp8Options fp8;
  // Must be the communicator's NVLink domains (ncclMoeCommInfo_t::ranksPerDomain): combine's
  // result depends on them (reference.h, CombineOrder).
  CombineOrder order;
};

struct ReferenceLayer {
  GroupLayout layout;
  std::vector<RankDispatchOutput> dispatched;  // per destination rank
  std::vector<HostRows> expertOut;             // per rank: identityExpert of its dispatched rows
  std::vector<HostRows> combined;              // per source rank: [T_r, H] in the tokens' type
};

Status runReferenceLayer(const GroupInputs& in, const LayerSettings& settings, ReferenceLayer* out);

// The identity expert: row r of `rows` (dequantised with `scales` when the rows are E4M3) times the
// float32 sum of probs[r * probsPerRow ...+ probsPerRow), rounded to `outType`. Without probs
// (empty) every row is multiplied by 1.
HostRows identityExpert(const HostRows& rows, const std::vector<float>& scales, const std::vector<float>& probs,
                        int probsPerRow, ElementType outType);

// Probabilities per received row in a dispatch output of `layout`: 1 (expert-major), K (per-rank,
// top-k) or L (per-rank, map).
int probsPerRow(const GroupLayout& layout);

}  // namespace nccl_moe::harness
