#include "tools/perf/baseline_kernels.h"

#include "misc/numerics.h"

namespace nccl_moe::perf {

namespace {

// One warp per row; Vector is int4 when the rows are whole 16-byte vectors, else a byte.
template <class Vector>
__global__ void gatherRowsKernel(const Vector* src, const int32_t* index, int64_t rows, size_t vectors, Vector* dst) {
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
    const Vector* from = src + static_cast<size_t>(index[r]) * vectors;
    Vector* to = dst + static_cast<size_t>(r) * vectors;
    for (size_t v = threadIdx.x % 32; v < vectors; v += 32) to[v] = from[v];
  }
}

__device__ float loadValue(const uint16_t* p) { return bf16ToFloat(*p); }
__device__ float loadValue(const float* p) { return *p; }
__device__ void storeValue(uint16_t* p, float v) { *p = floatToBf16(v); }
__device__ void storeValue(float* p, float v) { *p = v; }

template <class Element>
__global__ void sumRowsKernel(const Element* rows, const int32_t* offsets, const int32_t* list, int tokens, int hidden,
                              Element* out) {
  const int warps = gridDim.x * (blockDim.x / 32);
  for (int t = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; t < tokens; t += warps) {
    for (int c = threadIdx.x % 32; c < hidden; c += 32) {
      float sum = 0.0f;
      for (int i = offsets[t]; i < offsets[t + 1]; ++i) sum += loadValue(rows + static_cast<size_t>(list[i]) * hidden + c);
      storeValue(out + static_cast<size_t>(t) * hidden + c, sum);
    }
  }
}

// One warp per (row, block of 128 channels), four channels a lane.
__global__ void quantizePer128Kernel(const uint16_t* rows, int64_t count, int hidden, uint8_t* codes, float* scales) {
  const int blocks = (hidden + 127) / 128;
  const int64_t units = count * blocks;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  const int lane = threadIdx.x % 32;
  for (int64_t u = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; u < units; u += warps) {
    const int64_t row = u / blocks;
    const int first = static_cast<int>(u % blocks) * 128;
    float values[4];
    float amax = 0.0f;
    for (int i = 0; i < 4; ++i) {
      const int c = first + lane * 4 + i;
      values[i] = c < hidden ? bf16ToFloat(rows[row * hidden + c]) : 0.0f;
      amax = fmaxf(amax, fabsf(values[i]));
    }
    for (int offset = 16; offset > 0; offset /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, offset));
    const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
    for (int i = 0; i < 4; ++i) {
      const int c = first + lane * 4 + i;
      if (c < hidden) codes[row * hidden + c] = floatToE4m3(values[i] / scale);
    }
    if (lane == 0) scales[u] = scale;
  }
}

__global__ void emptyKernel() {}

}  // namespace

cudaError_t launchEmptyKernel(cudaStream_t stream) {
  emptyKernel<<<1, 1, 0, stream>>>();
  return cudaGetLastError();
}

cudaError_t launchQuantizeRowsPer128(const void* rows, int64_t count, int hidden, uint8_t* codes, float* scales,
                                     cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  quantizePer128Kernel<<<132, 512, 0, stream>>>(static_cast<const uint16_t*>(rows), count, hidden, codes, scales);
  return cudaGetLastError();
}

cudaError_t launchGatherRows(const void* src, const int32_t* index, int64_t rows, size_t rowBytes, void* dst,
                             cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  const bool vectors = rowBytes % 16 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(dst) % 16 == 0;
  if (vectors)
    gatherRowsKernel<<<132, 512, 0, stream>>>(static_cast<const int4*>(src), index, rows, rowBytes / 16,
                                              static_cast<int4*>(dst));
  else
    gatherRowsKernel<<<132, 512, 0, stream>>>(static_cast<const uint8_t*>(src), index, rows, rowBytes,
                                              static_cast<uint8_t*>(dst));
  return cudaGetLastError();
}

cudaError_t launchSumRowsBf16(const void* rows, const int32_t* offsets, const int32_t* list, int tokens, int hidden,
                              void* out, cudaStream_t stream) {
  if (tokens == 0) return cudaSuccess;
  sumRowsKernel<<<132, 512, 0, stream>>>(static_cast<const uint16_t*>(rows), offsets, list, tokens, hidden,
                                         static_cast<uint16_t*>(out));
  return cudaGetLastError();
}

cudaError_t launchSumRowsFp32(const void* rows, const int32_t* offsets, const int32_t* list, int tokens, int hidden,
                              void* out, cudaStream_t stream) {
  if (tokens == 0) return cudaSuccess;
  sumRowsKernel<<<132, 512, 0, stream>>>(static_cast<const float*>(rows), offsets, list, tokens, hidden,
                                         static_cast<float*>(out));
  return cudaGetLastError();
}

}  // namespace nccl_moe::perf
