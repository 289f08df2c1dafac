// One warp quantises one token row to E4M3 with a scale per 128 channels (the conversions of
// core/numerics.h, so the result is bit-identical to reference/fp8.cc).
#pragma once

#include <cstdint>

#include "core/numerics.h"
#include "kernels/row_ops.cuh"

namespace nccl_moe {

__device__ inline void warpQuantizeRowE4m3(const void* x, int type, int hidden, bool powerOfTwoScales,
                                           uint8_t* q, float* scales) {
  const int lane = laneId();
  for (int begin = 0, block = 0; begin < hidden; begin += kFp8BlockChannels, ++block) {
    const int end = min(hidden, begin + kFp8BlockChannels);
    float amax = 0.0f;
    for (int c = begin + lane; c < end; c += kWarp) amax = fmaxf(amax, fabsf(loadElement(x, c, type)));
    for (int offset = kWarp / 2; offset > 0; offset /= 2)
      amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, offset));
    const float scale = fp8ScaleFromAmax(amax, powerOfTwoScales);
    for (int c = begin + lane; c < end; c += kWarp) q[c] = floatToE4m3(loadElement(x, c, type) / scale);
    if (lane == 0) scales[block] = scale;
  }
}

}  // namespace nccl_moe
