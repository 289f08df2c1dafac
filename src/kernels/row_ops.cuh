// Warp-level row operations: byte copies (16-byte vectors when alignment allows) and typed
// element access for the float32 reductions.
#pragma once

#include <cstdint>

#include "misc/numerics.h"
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

// dst[0, bytes) = src[0, bytes), by one warp. Each lane keeps kCopyUnroll 16-byte loads in flight
// before it stores: a copy is bound by bytes in flight per SM, not by instructions. The last, partial
// round is predicated rather than a loop of its own: a 14 KiB row (896 vectors) is 4 rounds of
// loads in flight instead of 3 and then 4 dependent load-store trips.
constexpr int kCopyUnroll = 8;

__device__ inline void warpCopyBytes(void* dst, const void* src, size_t bytes) {
  const int lane = laneId();
  if (aligned16(dst) && aligned16(src) && bytes % 16 == 0) {
    auto* d = static_cast<int4*>(dst);
    const auto* s = static_cast<const int4*>(src);
    const size_t vectors = bytes / 16;
    for (size_t base = 0; base < vectors; base += kWarp * kCopyUnroll) {
      int4 v[kCopyUnroll];
#pragma unroll
      for (int u = 0; u < kCopyUnroll; ++u) {
        const size_t i = base + u * kWarp + lane;
        if (i < vectors) v[u] = s[i];
      }
#pragma unroll
      for (int u = 0; u < kCopyUnroll; ++u) {
        const size_t i = base + u * kWarp + lane;
        if (i < vectors) d[i] = v[u];
      }
    }
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

// The same bytes to several places in one pass over the source: the copy to target b (a bit of the
// warp-uniform mask `targets`) goes to destOf(b), which every lane calls together.
template <class DestOf>
__device__ inline void warpCopyBytesToEach(uint32_t targets, DestOf destOf, const void* src, size_t bytes) {
  if (targets == 0) return;
  const int lane = laneId();
  bool vectorized = aligned16(src) && bytes % 16 == 0;
  for (uint32_t m = targets; m != 0; m &= m - 1) vectorized = vectorized && aligned16(destOf(__ffs(m) - 1));
  if (!vectorized) {
    for (uint32_t m = targets; m != 0; m &= m - 1) warpCopyBytes(destOf(__ffs(m) - 1), src, bytes);
    return;
  }
  const auto* s = static_cast<const int4*>(src);
  const size_t vectors = bytes / 16;
  for (size_t base = 0; base < vectors; base += kWarp * kCopyUnroll) {
    int4 v[kCopyUnroll];
#pragma unroll
    for (int u = 0; u < kCopyUnroll; ++u) {
      const size_t i = base + u * kWarp + lane;
      if (i < vectors) v[u] = s[i];
    }
    for (uint32_t m = targets; m != 0; m &= m - 1) {
      auto* d = reinterpret_cast<int4*>(destOf(__ffs(m) - 1));
#pragma unroll
      for (int u = 0; u < kCopyUnroll; ++u) {
        const size_t i = base + u * kWarp + lane;
        if (i < vectors) d[i] = v[u];
      }
    }
  }
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

// dst = float32 sum of `count` rows, rowAt(0) first, one warp, rounded to the row type. The
// order of the additions is the same on every path (bit-identical results); with 16-byte aligned
// rows of a multiple of 16 bytes, each lane sums 16-byte chunks (8 bf16 or 4 fp32 elements).
template <class RowAt>
__device__ void warpSumRows(int count, RowAt rowAt, int hidden, int type, void* dst) {
  const int lane = laneId();
  const size_t rowBytes = static_cast<size_t>(hidden) * elementSize(type);
  bool vectorized = rowBytes % 16 == 0 && aligned16(dst);
  for (int i = 0; i < count && vectorized; ++i) vectorized = aligned16(rowAt(i));
  if (!vectorized) {
    for (int c = lane; c < hidden; c += kWarp) {
      float sum = 0.0f;
      for (int i = 0; i < count; ++i) sum += loadElement(rowAt(i), c, type);
      storeElement(dst, c, type, sum);
    }
    return;
  }
  const bool bf16 = type == static_cast<int>(ElementType::kBf16);
  const size_t vectors = rowBytes / 16;
  // Two chunks per lane per step, of kRowBatch rows at once: their loads are all in flight before
  // the first addition (one round trip per batch, not per row); the additions keep the row order.
  constexpr int kChunks = 2;
  constexpr int kRowBatch = 4;
  for (size_t first = lane; first < vectors; first += kWarp * kChunks) {
    float sum[kChunks][8] = {};
    for (int i0 = 0; i0 < count; i0 += kRowBatch) {
      int4 raw[kRowBatch][kChunks];
#pragma unroll
      for (int b = 0; b < kRowBatch; ++b) {
        const bool present = i0 + b < count;
        const int4* row = present ? reinterpret_cast<const int4*>(rowAt(i0 + b)) : nullptr;
#pragma unroll
        for (int u = 0; u < kChunks; ++u) {
          const size_t v = first + u * kWarp;
          raw[b][u] = present && v < vectors ? row[v] : make_int4(0, 0, 0, 0);
        }
      }
#pragma unroll
      for (int b = 0; b < kRowBatch; ++b) {
        if (i0 + b >= count) break;
#pragma unroll
        for (int u = 0; u < kChunks; ++u) {
          if (bf16) {
            const uint32_t words[4] = {static_cast<uint32_t>(raw[b][u].x), static_cast<uint32_t>(raw[b][u].y),
                                       static_cast<uint32_t>(raw[b][u].z), static_cast<uint32_t>(raw[b][u].w)};
#pragma unroll
            for (int w = 0; w < 4; ++w) {
              sum[u][2 * w] += bf16ToFloat(static_cast<uint16_t>(words[w] & 0xFFFFu));
              sum[u][2 * w + 1] += bf16ToFloat(static_cast<uint16_t>(words[w] >> 16));
            }
          } else {
            sum[u][0] += __int_as_float(raw[b][u].x);
            sum[u][1] += __int_as_float(raw[b][u].y);
            sum[u][2] += __int_as_float(raw[b][u].z);
            sum[u][3] += __int_as_float(raw[b][u].w);
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kChunks; ++u) {
      const size_t v = first + u * kWarp;
      if (v >= vectors) break;
      int4 out;
      if (bf16) {
        out.x = static_cast<int>(floatToBf16(sum[u][0]) | (static_cast<uint32_t>(floatToBf16(sum[u][1])) << 16));
        out.y = static_cast<int>(floatToBf16(sum[u][2]) | (static_cast<uint32_t>(floatToBf16(sum[u][3])) << 16));
        out.z = static_cast<int>(floatToBf16(sum[u][4]) | (static_cast<uint32_t>(floatToBf16(sum[u][5])) << 16));
        out.w = static_cast<int>(floatToBf16(sum[u][6]) | (static_cast<uint32_t>(floatToBf16(sum[u][7])) << 16));
      } else {
        out = make_int4(__float_as_int(sum[u][0]), __float_as_int(sum[u][1]), __float_as_int(sum[u][2]),
                        __float_as_int(sum[u][3]));
      }
      static_cast<int4*>(dst)[v] = out;
    }
  }
}

}  // namespace nccl_moe
