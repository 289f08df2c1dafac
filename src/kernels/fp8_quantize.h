// Host entry point of the row-wise FP8 quantisation kernel.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "plan/moe_shape.h"

namespace nccl_moe {

// x: [rows, hidden] bf16 or fp32 on the device; q: [rows, hidden] E4M3 codes; scales:
// [rows, ceil(hidden/128)]. Uses at most maxBlocks thread blocks (the SM budget).
cudaError_t launchQuantizeRowsE4m3(const void* x, ElementType type, int64_t rows, int hidden,
                                   bool powerOfTwoScales, uint8_t* q, float* scales, int maxBlocks,
                                   cudaStream_t stream);

}  // namespace nccl_moe
