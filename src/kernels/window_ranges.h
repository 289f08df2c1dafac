// Index arithmetic of the windowed combine (kernels/combine.cu), host and device, so that the CPU
// tests check the code the kernel runs: where a window starts in a source's pair slots, and which
// source's range holds the i-th pair slot of a window.
#pragma once

#include <cstdint>

#include "misc/numerics.h"

namespace nccl_moe {

// The first index in [lo, hi) whose key is >= value (hi if none), for keys that do not decrease
// over [lo, hi): a source's pair slots are in token order.
template <class KeyOf>
NCCL_MOE_HD int64_t firstIndexAtLeast(int64_t lo, int64_t hi, int64_t value, KeyOf keyOf) {
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (keyOf(mid) < value)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

// The source whose range holds index i of the ranges' union: the last s < ranks with
// prefix[s] <= i, for prefix[0] = 0 <= i < prefix[ranks] and prefix not decreasing (an empty range
// has prefix[s] == prefix[s + 1], so the last such s is the one whose range is not empty).
// maxRanks: a power of two >= ranks (the steps of the search).
NCCL_MOE_HD int sourceHolding(const int64_t* prefix, int ranks, int maxRanks, int64_t i) {
  int source = 0;
  for (int step = maxRanks / 2; step > 0; step /= 2)
    if (source + step < ranks && prefix[source + step] <= i) source += step;
  return source;
}

}  // namespace nccl_moe
