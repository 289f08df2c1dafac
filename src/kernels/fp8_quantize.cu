// Row-wise FP8 E4M3 quantisation (one fp32 scale per 128 channels), bit-identical to
// reference/fp8.cc: both use the conversions of misc/numerics.h.
#include "kernels/fp8_quantize.h"
#include "kernels/fp8_row.cuh"
#include "misc/launch_error.h"

namespace nccl_moe {

namespace {

// One warp per row.
__global__ void quantizeRowsKernel(const void* x, int type, int64_t rows, int hidden, bool powerOfTwoScales,
                                   uint8_t* q, float* scales) {
  const int blocks = fp8BlockCount(hidden);
  const size_t rowBytes = static_cast<size_t>(hidden) * elementSize(type);
  for (int64_t row = globalWarp(); row < rows; row += warpsInGrid())
    warpQuantizeRowE4m3(static_cast<const uint8_t*>(x) + row * rowBytes, type, hidden, powerOfTwoScales,
                        q + row * hidden, scales + row * blocks);
}

}  // namespace

cudaError_t launchQuantizeRowsE4m3(const void* x, ElementType type, int64_t rows, int hidden,
                                   bool powerOfTwoScales, uint8_t* q, float* scales, int maxBlocks,
                                   cudaStream_t stream) {
  discardEarlierLaunchError();
  if (rows == 0) return cudaSuccess;
  if (type != ElementType::kBf16 && type != ElementType::kFp32) return cudaErrorInvalidValue;
  constexpr int kThreads = 256;
  const int64_t wanted = (rows + kThreads / kWarp - 1) / (kThreads / kWarp);
  const int grid = static_cast<int>(wanted < maxBlocks ? wanted : maxBlocks);
  quantizeRowsKernel<<<grid, kThreads, 0, stream>>>(x, static_cast<int>(type), rows, hidden, powerOfTwoScales, q,
                                                    scales);
  return cudaGetLastError();
}

}  // namespace nccl_moe
