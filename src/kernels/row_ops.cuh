// Warp-level row operations: byte copies (16-byte vectors when alignment allows) and typed
// element access for the float32 reductions.
#pragma once

#include <cstdint>

#include "core/numerics.h"
#include "plan/moe_shape.h"

namespace nccl_moe {

constexpr int kWarp = 32;

__device__ __forceinline__ int laneId() { return threadIdx.x & (kWarp - 1); }
__device__ __forceinline__ int warpInBlock() { return threadIdx.x / kWarp; }
__device__ __forceinline__ int64_t globalWarp() {
  return static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + warpInBlock();
}
__device__ __forceinline__ int64_t warpsInGrid() {
  return static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarp);
}

__device__ __forceinline__ bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

// dst[0, bytes) = src[0, bytes), by one warp.
__device__ inline void warpCopyBytes(void* dst, const void* src, size_t bytes) {
  const int lane = laneId();
  if (aligned16(dst) && aligned16(src) && bytes % 16 == 0) {
    auto* d = static_cast<int4*>(dst);
    const auto* s = static_cast<const int4*>(src);
    for (size_t i = lane; i < bytes / 16; i += kWarp) d[i] = s[i];
    return;
  }
  if ((reinterpret_cast<uintptr_t>(dst) & 1u) == 0 && (reinterpret_cast<uintptr_t>(src) & 1u) == 0 &&
      bytes % 2 == 0) {
    auto* d = static_cast<uint16_t*>(dst);
    const auto* s = static_cast<const uint16_t*>(src);
    for (size_t i = lane; i < bytes / 2; i += kWarp) d[i] = s[i];
    return;
  }
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  for (size_t i = lane; i < bytes; i += kWarp) d[i] = s[i];
}

__device__ inline void warpZeroBytes(void* dst, size_t bytes) {
  auto* d = static_cast<uint8_t*>(dst);
  for (size_t i = laneId(); i < bytes; i += kWarp) d[i] = 0;
}

__device__ __forceinline__ float loadElement(const void* row, int c, int type) {
  if (type == static_cast<int>(ElementType::kBf16)) return bf16ToFloat(static_cast<const uint16_t*>(row)[c]);
  return static_cast<const float*>(row)[c];
}

__device__ __forceinline__ void storeElement(void* row, int c, int type, float v) {
  if (type == static_cast<int>(ElementType::kBf16))
    static_cast<uint16_t*>(row)[c] = floatToBf16(v);
  else
    static_cast<float*>(row)[c] = v;
}

// Rounds to the row type and back (a partial that travels as one row).
__device__ __forceinline__ float roundToRowType(float v, int type) {
  return type == static_cast<int>(ElementType::kBf16) ? bf16ToFloat(floatToBf16(v)) : v;
}

__device__ __forceinline__ int elementSize(int type) {
  return type == static_cast<int>(ElementType::kBf16) ? 2 : 4;
}

}  // namespace nccl_moe
