// A cost table in NCCL's shape (float [algorithms][protocols], -1 = ignored), as passed to
// getCollInfo (a float** that really points at the contiguous array).
#pragma once

#include <array>

#include "plugin/tuner_abi.h"

namespace nccl_moe::testing_support {

struct CostTable {
  static constexpr int kAlgos = tuner_abi::kNumAlgorithms;
  static constexpr int kProtos = tuner_abi::kNumProtocols;
  static constexpr int kRing = 1, kTree = 0, kSimple = 2, kLL = 0;
  std::array<float, kAlgos * kProtos> costs{};

  // Realistic: Tree and Ring usable with every protocol (microseconds), CollNet/NVLS/PAT ignored.
  CostTable() {
    costs.fill(tuner_abi::kIgnoredCost);
    const float tree[kProtos] = {12.5f, 15.0f, 40.0f};
    const float ring[kProtos] = {10.0f, 11.0f, 35.0f};
    for (int p = 0; p < kProtos; ++p) {
      at(kTree, p) = tree[p];
      at(kRing, p) = ring[p];
    }
  }
  float& at(int algo, int proto) { return costs[algo * kProtos + proto]; }
  float** table() { return reinterpret_cast<float**>(costs.data()); }
};

}  // namespace nccl_moe::testing_support
