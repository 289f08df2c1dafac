// Row-wise FP8 E4M3 quantisation (one fp32 scale per 128 channels), bit-identical to
// reference/fp8.cc: both use the conversions of core/numerics.h.
#include "kernels/fp8_quantize.h"

#include "core/numerics.h"

namespace nccl_moe {

namespace {

constexpr int kWarpSize = 32;

template <class T>
__device__ float loadAsFloat(const T* p);
template <>
__device__ float loadAsFloat<uint16_t>(const uint16_t* p) {
  return bf16ToFloat(*p);
}
template <>
__device__ float loadAsFloat<float>(const float* p) {
  return *p;
}

// One warp per (row, 128-channel block): amax by warp reduction, then each lane converts its
// channels. Rows are independent, so the grid strides over blocks of all rows.
template <class T>
__global__ void quantizeRowsKernel(const T* x, int64_t rows, int hidden, bool powerOfTwoScales,
                                   uint8_t* q, float* scales) {
  const int blocksPerRow = fp8BlockCount(hidden);
  const int64_t totalBlocks = rows * blocksPerRow;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t warpsInGrid = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarpSize);
  for (int64_t item = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarpSize) +
                      threadIdx.x / kWarpSize;
       item < totalBlocks; item += warpsInGrid) {
    const int64_t row = item / blocksPerRow;
    const int block = static_cast<int>(item % blocksPerRow);
    const int begin = block * kFp8BlockChannels;
    const int end = min(hidden, begin + kFp8BlockChannels);
    const T* src = x + row * hidden;
    float amax = 0.0f;
    for (int c = begin + lane; c < end; c += kWarpSize) amax = fmaxf(amax, fabsf(loadAsFloat(src + c)));
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
      amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, offset));
    const float scale = fp8ScaleFromAmax(amax, powerOfTwoScales);
    for (int c = begin + lane; c < end; c += kWarpSize)
      q[row * hidden + c] = floatToE4m3(loadAsFloat(src + c) / scale);
    if (lane == 0) scales[row * blocksPerRow + block] = scale;
  }
}

}  // namespace

cudaError_t launchQuantizeRowsE4m3(const void* x, ElementType type, int64_t rows, int hidden,
                                   bool powerOfTwoScales, uint8_t* q, float* scales, int maxBlocks,
                                   cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const int64_t items = rows * fp8BlockCount(hidden);
  const int64_t wanted = (items + kThreads / kWarpSize - 1) / (kThreads / kWarpSize);
  const int grid = static_cast<int>(wanted < maxBlocks ? wanted : maxBlocks);
  if (type == ElementType::kBf16)
    quantizeRowsKernel<<<grid, kThreads, 0, stream>>>(static_cast<const uint16_t*>(x), rows, hidden,
                                                      powerOfTwoScales, q, scales);
  else if (type == ElementType::kFp32)
    quantizeRowsKernel<<<grid, kThreads, 0, stream>>>(static_cast<const float*>(x), rows, hidden,
                                                      powerOfTwoScales, q, scales);
  else
    return cudaErrorInvalidValue;
  return cudaGetLastError();
}

}  // namespace nccl_moe
