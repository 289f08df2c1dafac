// The kernels' E4M3 conversion (misc/numerics.h, plain integer and float arithmetic, the same on
// every GPU) against cuda_fp8.h's own software conversion: what __nv_cvt_float_to_fp8 computes on
// the host and on GPUs without the cvt.*.e4m3x2 instructions (below sm_89: A100, A10/A40/RTX 30).
// On sm_89 and newer cuda_fp8.h uses the instruction instead; tests/gpu/test_fp8_kernel.cu holds
// the conversion to that on the GPU. Together: the same bits on every architecture we build for.
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "misc/numerics.h"

namespace nccl_moe::test {
namespace {

float fromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

uint8_t cudaSoftware(float f) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(f, __NV_SATFINITE, __NV_E4M3));
}

// Every float from 2^-12 (below half the smallest subnormal, 2^-10) to 2^10 (past the saturation
// point 464): all roundings, ties, subnormals and the saturation boundary, each exactly once.
TEST(Fp8CudaHeader, EveryFloatInTheE4m3RangeMatches) {
  const uint32_t first = 115u << 23;  // 2^-12
  const uint32_t last = 137u << 23;   // 2^10
  int64_t mismatches = 0;
  uint32_t firstMismatch = 0;
  for (uint32_t bits = first; bits <= last; ++bits) {
    const float f = fromBits(bits);
    if (floatToE4m3(f) != cudaSoftware(f) && mismatches++ == 0) firstMismatch = bits;
  }
  EXPECT_EQ(mismatches, 0) << "first at " << fromBits(firstMismatch) << ": ours "
                           << int(floatToE4m3(fromBits(firstMismatch))) << ", cuda_fp8.h "
                           << int(cudaSoftware(fromBits(firstMismatch)));
}

// Negative values, underflow to zero, saturation, infinities, denormal floats: a sample of every
// exponent with both signs. NaN gives a NaN code both ways (0x7F or 0xFF: cuda_fp8.h drops the
// sign, ours keeps it; both decode to NaN).
TEST(Fp8CudaHeader, EveryExponentAndSignMatches) {
  for (uint32_t sign : {0u, 0x80000000u}) {
    for (uint32_t exponent = 0; exponent < 256; ++exponent) {
      for (uint32_t mantissa : {0u, 1u, 0x1FFFFFu, 0x200000u, 0x400000u, 0x400001u, 0x7FFFFFu}) {
        const uint32_t bits = sign | (exponent << 23) | mantissa;
        const float f = fromBits(bits);
        if (exponent == 255 && mantissa != 0) {
          EXPECT_EQ(floatToE4m3(f) & 0x7F, 0x7F) << std::hex << bits;
          EXPECT_EQ(cudaSoftware(f) & 0x7F, 0x7F) << std::hex << bits;
          continue;
        }
        ASSERT_EQ(floatToE4m3(f), cudaSoftware(f)) << "bits 0x" << std::hex << bits << " (" << f << ")";
      }
    }
  }
}

}  // namespace
}  // namespace nccl_moe::test
