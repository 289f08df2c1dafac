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

}  // namespace

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
