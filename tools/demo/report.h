// What nccl-moe-demo computes and prints on the host: the group's inputs from the seed, the check
// of the combined tokens against x * sum(p), the per-rank table and the GPU table.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/demo/options.h"
#include "tools/harness/reference_layer.h"

namespace nccl_moe::demo {

// Every rank's routing and bf16 tokens for a group of `ranks`, from --seed: the CPU run and every
// GPU rank build the same ones.
harness::GroupInputs makeInputs(const DemoOptions& o, int ranks);

// combined == x * sum(p) within rounding: with probs >= 0, |y - x * sum(p)| <= n * u * |x| * sum(p)
// for bf16's unit roundoff u = 2^-8 and n roundings on the way (each expert row, the output, and in
// the expert-major layout each rank's partial), plus FP8's relative 2^-4 (and its subnormal step,
// absolute) when on, plus float32 summation slack.
struct InputCheck {
  int64_t checked = 0;  // values
  int64_t bad = 0;      // outside the tolerance
  double worst = 0;     // the largest error as a fraction of its tolerance
  void add(const InputCheck& other);
};
InputCheck checkAgainstInput(const DemoOptions& o, const RankRouting& routing, const HostRows& x,
                             const HostRows& combined);

// The per-rank table and the line under it.
std::string rankTable(const DemoOptions& o, const GroupLayout& layout);

// "# check combine(dispatch(x) * p) == x * sum(p): ... PASSED".
std::string inputCheckLine(const InputCheck& check);

struct StepResult {
  std::string name;                // "layout", "dispatch", "combine"
  double us = 0;                   // the slowest rank's mean per call
  std::optional<double> gbPerRank; // bytes per rank / time
  int64_t checked = 0, wrong = 0;  // values, all ranks
};
std::string gpuTable(const std::vector<StepResult>& steps);

}  // namespace nccl_moe::demo
