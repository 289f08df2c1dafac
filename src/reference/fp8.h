// FP8 E4M3 quantisation of token rows, one fp32 scale per 128 channels (the last block covers
// H % 128 channels when H is not a multiple of 128): scale = max(amax, 1e-4) / 448, optionally
// rounded up to a power of two; q = e4m3(x / scale), dequantised as e4m3(q) * scale.
#pragma once

#include <cstdint>

namespace nccl_moe {

// x: `hidden` values; q: `hidden` codes; scales: fp8BlockCount(hidden) values.
void quantizeRowE4m3(const float* x, int hidden, bool powerOfTwoScales, uint8_t* q, float* scales);
void dequantizeRowE4m3(const uint8_t* q, const float* scales, int hidden, float* x);

}  // namespace nccl_moe
