#include "tools/perf/baseline_kernels.h"

#include "misc/numerics.h"

namespace nccl_moe::perf {

namespace {

__global__ void gatherRowsKernel(const int4* src, const int32_t* index, int64_t rows, size_t vectors, int4* dst) {
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
    const int4* from = src + static_cast<size_t>(index[r]) * vectors;
    int4* to = dst + static_cast<size_t>(r) * vectors;
    for (size_t v = threadIdx.x % 32; v < vectors; v += 32) to[v] = from[v];
  }
}

__global__ void sumRowsKernel(const uint16_t* rows, const int32_t* offsets, const int32_t* list, int tokens, int hidden,
                              uint16_t* out) {
  const int warps = gridDim.x * (blockDim.x / 32);
  for (int t = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; t < tokens; t += warps) {
    for (int c = threadIdx.x % 32; c < hidden; c += 32) {
      float sum = 0.0f;
      for (int i = offsets[t]; i < offsets[t + 1]; ++i) sum += bf16ToFloat(rows[static_cast<size_t>(list[i]) * hidden + c]);
      out[static_cast<size_t>(t) * hidden + c] = floatToBf16(sum);
    }
  }
}

}  // namespace

cudaError_t launchGatherRows(const void* src, const int32_t* index, int64_t rows, size_t rowBytes, void* dst,
                             cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  gatherRowsKernel<<<132, 512, 0, stream>>>(static_cast<const int4*>(src), index, rows, rowBytes / 16,
                                            static_cast<int4*>(dst));
  return cudaGetLastError();
}

cudaError_t launchSumRowsBf16(const void* rows, const int32_t* offsets, const int32_t* list, int tokens, int hidden,
                              void* out, cudaStream_t stream) {
  if (tokens == 0) return cudaSuccess;
  sumRowsKernel<<<132, 512, 0, stream>>>(static_cast<const uint16_t*>(rows), offsets, list, tokens, hidden,
                                         static_cast<uint16_t*>(out));
  return cudaGetLastError();
}

}  // namespace nccl_moe::perf
