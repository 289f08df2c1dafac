// The path users have today, for nccl-moe-perf's baseline: permute rows into per-destination order,
// NCCL all-to-all-v (grouped send/recv), and the reverse with a per-token sum.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace nccl_moe::perf {

// dst[i] = src[index[i]] for i < rows (rows of rowBytes bytes; any size, 16-byte vectors when it allows).
cudaError_t launchGatherRows(const void* src, const int32_t* index, int64_t rows, size_t rowBytes, void* dst,
                             cudaStream_t stream);
// out[t] = sum of rows[list[offsets[t] .. offsets[t+1])] for t < tokens (float32 accumulation), in
// bf16 or fp32 rows.
cudaError_t launchSumRowsBf16(const void* rows, const int32_t* offsets, const int32_t* list, int tokens, int hidden,
                              void* out, cudaStream_t stream);
// What a peer taking pre-quantised FP8 input (DeepEP) needs before its dispatch: bf16 rows [rows,
// hidden] to E4M3 codes [rows, hidden] and one fp32 scale per 128 channels [rows, ceil(hidden/128)]
// (scale = amax / 448, 1 for an all-zero block; codes round to nearest even, saturating). A
// separate, plain kernel, timed beside the FP8 dispatch (which quantises inside the call).
cudaError_t launchQuantizeRowsPer128(const void* rows, int64_t count, int hidden, uint8_t* codes, float* scales,
                                     cudaStream_t stream);
// A kernel that does nothing: the launch floor a one-kernel call cannot go below.
cudaError_t launchEmptyKernel(cudaStream_t stream);
cudaError_t launchSumRowsFp32(const void* rows, const int32_t* offsets, const int32_t* list, int tokens, int hidden,
                              void* out, cudaStream_t stream);

}  // namespace nccl_moe::perf
