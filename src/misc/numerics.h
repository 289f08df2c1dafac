// Bit-exact number formats shared by the CPU reference and the CUDA kernels.
//
// Every conversion here is written once and compiled for both host and device, so that the
// reference and the kernels produce the same bits (tests also compare these against the
// hardware conversions on the GPU).
#pragma once

#include <math.h>

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define NCCL_MOE_HD __host__ __device__ __forceinline__
#else
#define NCCL_MOE_HD inline
#endif

namespace nccl_moe {

// Channels that share one FP8 scale.
constexpr int kFp8BlockChannels = 128;
// Largest finite E4M3 magnitude and the floor applied to a block's amax before scaling.
constexpr float kFp8E4M3Max = 448.0f;
constexpr float kFp8AmaxFloor = 1e-4f;

NCCL_MOE_HD uint32_t floatBits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof(u));
  return u;
}

NCCL_MOE_HD float bitsToFloat(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof(f));
  return f;
}

// Scales f by 2^e exactly (no rounding happens for the exponents used below).
NCCL_MOE_HD float scaleByPow2(float f, int e) {
  return f * bitsToFloat(static_cast<uint32_t>(e + 127) << 23);
}

NCCL_MOE_HD int fp8BlockCount(int hidden) {
  return (hidden + kFp8BlockChannels - 1) / kFp8BlockChannels;
}

// ---- bfloat16 -------------------------------------------------------------------------------

NCCL_MOE_HD float bf16ToFloat(uint16_t h) { return bitsToFloat(static_cast<uint32_t>(h) << 16); }

// Round to nearest, ties to even; every NaN becomes the canonical 0x7FFF (as CUDA does).
NCCL_MOE_HD uint16_t floatToBf16(float f) {
  uint32_t u = floatBits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFF;
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// ---- float8 E4M3 (the "fn" variant: no infinities, 0x7F/0xFF are NaN, max 448) ----------------

NCCL_MOE_HD float e4m3ToFloat(uint8_t code) {
  const uint32_t sign = (code & 0x80u) << 24;
  const int exponent = (code >> 3) & 0xF;
  const int mantissa = code & 0x7;
  if (exponent == 0xF && mantissa == 0x7) return bitsToFloat(0x7FC00000u | sign);
  float magnitude = exponent == 0 ? scaleByPow2(static_cast<float>(mantissa), -9)
                                  : scaleByPow2(static_cast<float>(8 + mantissa), exponent - 10);
  return bitsToFloat(floatBits(magnitude) | sign);
}

// Round to nearest even, saturating to +-448 (PTX cvt.rn.satfinite.e4m3x2.f32 semantics).
NCCL_MOE_HD uint8_t floatToE4m3(float f) {
  const uint32_t u = floatBits(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t absBits = u & 0x7FFFFFFFu;
  if (absBits > 0x7F800000u) return static_cast<uint8_t>(sign | 0x7F);
  const float a = bitsToFloat(absBits);
  if (a >= kFp8E4M3Max) return static_cast<uint8_t>(sign | 0x7E);
  const int unbiased = static_cast<int>(absBits >> 23) - 127;
  if (unbiased < -6) {
    // Subnormal range: multiples of 2^-9; a result of 8 is the smallest normal, code 0x08.
    const int m = static_cast<int>(rintf(scaleByPow2(a, 9)));
    return static_cast<uint8_t>(sign | m);
  }
  const int q = static_cast<int>(rintf(scaleByPow2(a, 3 - unbiased)));  // in [8, 16]
  return static_cast<uint8_t>(sign | (((unbiased + 7) << 3) + (q - 8)));
}

// One block's scale: max(amax, 1e-4) / 448, optionally rounded up to a power of two (which makes
// it representable as a UE8M0 exponent byte).
NCCL_MOE_HD float fp8ScaleFromAmax(float amax, bool powerOfTwo) {
  float scale = (amax > kFp8AmaxFloor ? amax : kFp8AmaxFloor) / kFp8E4M3Max;
  if (powerOfTwo) {
    const uint32_t bits = floatBits(scale);
    scale = bitsToFloat((bits + 0x007FFFFFu) & 0xFF800000u);
  }
  return scale;
}

// UE8M0: the biased exponent byte of a power-of-two scale.
NCCL_MOE_HD uint8_t scaleToUe8m0(float powerOfTwoScale) {
  return static_cast<uint8_t>(floatBits(powerOfTwoScale) >> 23);
}

NCCL_MOE_HD float ue8m0ToScale(uint8_t exponent) {
  return bitsToFloat(static_cast<uint32_t>(exponent) << 23);
}

}  // namespace nccl_moe
