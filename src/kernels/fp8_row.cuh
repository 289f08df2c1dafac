// One warp quantises one token row to E4M3 with a scale per 128 channels (the conversions of
// misc/numerics.h, so the result is bit-identical to reference/fp8.cc).
#pragma once

#include <cstdint>

#include "misc/numerics.h"
#include "kernels/row_ops.cuh"

namespace nccl_moe {

// Converts one block of channels [begin, end) lane by lane (the general path: any hidden size,
// any alignment).
__device__ inline void warpQuantizeBlockScalar(const void* x, int type, int begin, int end, bool powerOfTwoScales,
                                               uint8_t* q, float* scale) {
  const int lane = laneId();
  float amax = 0.0f;
  for (int c = begin + lane; c < end; c += kWarp) amax = fmaxf(amax, fabsf(loadElement(x, c, type)));
  for (int offset = kWarp / 2; offset > 0; offset /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, offset));
  const float s = fp8ScaleFromAmax(amax, powerOfTwoScales);
  for (int c = begin + lane; c < end; c += kWarp) q[c] = floatToE4m3(loadElement(x, c, type) / s);
  if (lane == 0) *scale = s;
}

// The 8 bf16 values of one 16-byte vector as floats.
__device__ __forceinline__ void unpackBf16x8(int4 raw, float* v) {
  const uint32_t words[4] = {static_cast<uint32_t>(raw.x), static_cast<uint32_t>(raw.y), static_cast<uint32_t>(raw.z),
                             static_cast<uint32_t>(raw.w)};
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    v[2 * w] = bf16ToFloat(static_cast<uint16_t>(words[w] & 0xFFFFu));
    v[2 * w + 1] = bf16ToFloat(static_cast<uint16_t>(words[w] >> 16));
  }
}

// Loads 8 consecutive elements at channel c as floats (16-byte aligned bf16, or 32 bytes of fp32).
__device__ __forceinline__ void load8(const void* x, int type, int c, float* v) {
  if (type == static_cast<int>(ElementType::kBf16)) {
    unpackBf16x8(*reinterpret_cast<const int4*>(static_cast<const uint16_t*>(x) + c), v);
  } else {
    const float4 a = *reinterpret_cast<const float4*>(static_cast<const float*>(x) + c);
    const float4 b = *reinterpret_cast<const float4*>(static_cast<const float*>(x) + c + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  }
}

// Two floats to E4M3 codes, `lo` in the low byte: the hardware conversion where the GPU has one
// (sm_89 on; PTX cvt.rn.satfinite.e4m3x2.f32, whose rounding and saturation floatToE4m3 follows:
// tests/gpu/test_fp8_kernel.cu holds the two equal), else floatToE4m3. A NaN keeps its sign, as
// in floatToE4m3 (the hardware returns one NaN code for both signs).
__device__ __forceinline__ uint32_t e4m3Pair(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  uint16_t codes;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(codes) : "f"(hi), "f"(lo));
  uint32_t pair = codes;
  if (lo != lo) pair = (pair & 0xFF00u) | floatToE4m3(lo);
  if (hi != hi) pair = (pair & 0x00FFu) | (static_cast<uint32_t>(floatToE4m3(hi)) << 8);
  return pair;
#else
  return static_cast<uint32_t>(floatToE4m3(lo)) | (static_cast<uint32_t>(floatToE4m3(hi)) << 8);
#endif
}

// Whole 128-channel blocks, 2 x kQuantizeUnroll per warp step: each half-warp owns a block, each
// lane 8 channels (one 16-byte load, one 8-byte store), the block's amax reduced inside the
// half-warp. A step's loads are all issued before its first amax: one warp quantising a whole row
// alone (a low-latency dispatch of one token) waits for memory once per step, not once per block.
constexpr int kQuantizeUnroll = 4;

// One warp step of whole blocks [first, first + 2 x kQuantizeUnroll): this lane's 8 codes and its
// block's scale for u = 0 .. kQuantizeUnroll - 1 (block first + 2u + half; past `blocks` the values
// are zero and nothing may be stored for them).
__device__ __forceinline__ void warpQuantizeStep(const void* x, int type, int blocks, int first, bool powerOfTwoScales,
                                                 uint2* codes, float* scale) {
  const int half = laneId() / 16, sub = laneId() % 16;
  float v[kQuantizeUnroll][8];
#pragma unroll
  for (int u = 0; u < kQuantizeUnroll; ++u) {
    const int block = first + 2 * u + half;
#pragma unroll
    for (int i = 0; i < 8; ++i) v[u][i] = 0.0f;
    if (block < blocks) load8(x, type, block * kFp8BlockChannels + sub * 8, v[u]);
  }
#pragma unroll
  for (int u = 0; u < kQuantizeUnroll; ++u) {
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) amax = fmaxf(amax, fabsf(v[u][i]));
    for (int offset = 8; offset > 0; offset /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, offset));
    const float s = fp8ScaleFromAmax(amax, powerOfTwoScales);
    uint32_t packed[2] = {0, 0};
#pragma unroll
    for (int i = 0; i < 8; i += 2) packed[i / 4] |= e4m3Pair(v[u][i] / s, v[u][i + 1] / s) << (8 * (i % 4));
    codes[u] = make_uint2(packed[0], packed[1]);
    scale[u] = s;
  }
}

// A step's codes and scales into one row's (q, scales).
__device__ __forceinline__ void storeQuantizeStep(int blocks, int first, const uint2* codes, const float* scale,
                                                  uint8_t* q, float* scales) {
  const int half = laneId() / 16, sub = laneId() % 16;
#pragma unroll
  for (int u = 0; u < kQuantizeUnroll; ++u) {
    const int block = first + 2 * u + half;
    if (block >= blocks) continue;
    *reinterpret_cast<uint2*>(q + block * kFp8BlockChannels + sub * 8) = codes[u];
    if (sub == 0) scales[block] = scale[u];
  }
}

__device__ inline void warpQuantizeFullBlocks(const void* x, int type, int blocks, bool powerOfTwoScales, uint8_t* q,
                                              float* scales) {
  for (int first = 0; first < blocks; first += 2 * kQuantizeUnroll) {
    uint2 codes[kQuantizeUnroll];
    float scale[kQuantizeUnroll];
    warpQuantizeStep(x, type, blocks, first, powerOfTwoScales, codes, scale);
    storeQuantizeStep(blocks, first, codes, scale, q, scales);
  }
}

__device__ inline void warpQuantizeRowE4m3(const void* x, int type, int hidden, bool powerOfTwoScales,
                                           uint8_t* q, float* scales) {
  const int fullBlocks = hidden / kFp8BlockChannels;
  const bool vectorized = fullBlocks > 0 && aligned16(x) && (reinterpret_cast<uintptr_t>(q) & 7u) == 0;
  int block = 0;
  if (vectorized) {
    warpQuantizeFullBlocks(x, type, fullBlocks, powerOfTwoScales, q, scales);
    block = fullBlocks;
  }
  for (int begin = block * kFp8BlockChannels; begin < hidden; begin += kFp8BlockChannels, ++block)
    warpQuantizeBlockScalar(x, type, begin, min(hidden, begin + kFp8BlockChannels), powerOfTwoScales, q,
                            scales + block);
}

// warpQuantizeRowE4m3 into several places in one pass over x: lane b holds target b's codes and
// scales pointers, meaningful for the bits b of the warp-uniform `targets`; every target gets the
// bits quantising into it alone would give. A row of whole 128-channel blocks, 16-byte aligned,
// with 8-byte aligned codes everywhere is read and quantised once; any other is quantised per target.
__device__ inline void warpQuantizeRowE4m3ToEach(uint32_t targets, uint8_t* laneCodes, float* laneScales, const void* x,
                                                 int type, int hidden, bool powerOfTwoScales) {
  if (targets == 0) return;
  const bool mine = (targets >> laneId()) & 1u;
  const int blocks = hidden / kFp8BlockChannels;
  const bool vectorized = __all_sync(0xFFFFFFFFu, !mine || (reinterpret_cast<uintptr_t>(laneCodes) & 7u) == 0) &&
                          blocks > 0 && blocks * kFp8BlockChannels == hidden && aligned16(x);
  auto codesOf = [&](int b) {
    return reinterpret_cast<uint8_t*>(__shfl_sync(0xFFFFFFFFu, reinterpret_cast<uintptr_t>(laneCodes), b));
  };
  auto scalesOf = [&](int b) {
    return reinterpret_cast<float*>(__shfl_sync(0xFFFFFFFFu, reinterpret_cast<uintptr_t>(laneScales), b));
  };
  if (!vectorized) {
    for (uint32_t m = targets; m != 0; m &= m - 1) {
      const int b = __ffs(m) - 1;
      uint8_t* q = codesOf(b);
      float* scales = scalesOf(b);
      warpQuantizeRowE4m3(x, type, hidden, powerOfTwoScales, q, scales);
    }
    return;
  }
  // As warpQuantizeFullBlocks, the step's stores repeated per target (all lanes together, so that
  // the targets' pointers can be passed around the warp).
  for (int first = 0; first < blocks; first += 2 * kQuantizeUnroll) {
    uint2 codes[kQuantizeUnroll];
    float scale[kQuantizeUnroll];
    warpQuantizeStep(x, type, blocks, first, powerOfTwoScales, codes, scale);
    for (uint32_t m = targets; m != 0; m &= m - 1) {
      const int b = __ffs(m) - 1;
      uint8_t* q = codesOf(b);
      float* scales = scalesOf(b);
      storeQuantizeStep(blocks, first, codes, scale, q, scales);
    }
  }
}

}  // namespace nccl_moe
