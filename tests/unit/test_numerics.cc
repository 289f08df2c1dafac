// Number formats: bf16 and E4M3 conversions against independent brute-force definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "misc/numerics.h"
#include "reference/fp8.h"

namespace nccl_moe {
namespace {

// E4M3 value of a code, from the format's definition (independent of e4m3ToFloat).
double e4m3Definition(int code) {
  const int sign = code >> 7, exponent = (code >> 3) & 0xF, mantissa = code & 7;
  const double magnitude = exponent == 0 ? std::ldexp(mantissa / 8.0, -6)
                                         : std::ldexp(1.0 + mantissa / 8.0, exponent - 7);
  return sign ? -magnitude : magnitude;
}

// Nearest finite E4M3 code by exhaustive search, ties to the even code, saturating at +-448.
int nearestE4m3(float value) {
  int best = -1;
  double bestDistance = std::numeric_limits<double>::infinity();
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7F) == 0x7F) continue;  // NaN
    if ((code & 0x80) != (std::signbit(value) ? 0x80 : 0)) continue;
    const double distance = std::fabs(e4m3Definition(code) - static_cast<double>(value));
    if (distance < bestDistance || (distance == bestDistance && (code & 1) == 0 && (best & 1) == 1)) {
      best = code;
      bestDistance = distance;
    }
  }
  return best;
}

TEST(Numerics, E4m3DecodeMatchesDefinition) {
  for (int code = 0; code < 256; ++code) {
    const float decoded = e4m3ToFloat(static_cast<uint8_t>(code));
    if ((code & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(decoded)) << code;
      continue;
    }
    EXPECT_EQ(static_cast<double>(decoded), e4m3Definition(code)) << "code " << code;
  }
  EXPECT_EQ(e4m3ToFloat(0x7E), 448.0f);
  EXPECT_EQ(e4m3ToFloat(0x08), 0.015625f);       // smallest normal 2^-6
  EXPECT_EQ(e4m3ToFloat(0x01), 0.001953125f);    // smallest subnormal 2^-9
}

TEST(Numerics, E4m3EncodeIsNearestEvenSaturating) {
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<float> logMagnitude(-12.0f, 10.0f);
  for (int i = 0; i < 20000; ++i) {
    float value = std::exp2(logMagnitude(rng)) * (i % 2 ? -1.0f : 1.0f);
    ASSERT_EQ(floatToE4m3(value), nearestE4m3(value)) << "value " << value;
  }
  // Exact midpoints between neighbouring codes must go to the even code.
  for (int code = 0; code < 0x7E; ++code) {
    const float mid = static_cast<float>((e4m3Definition(code) + e4m3Definition(code + 1)) / 2);
    EXPECT_EQ(floatToE4m3(mid), (code & 1) ? code + 1 : code) << "midpoint above code " << code;
  }
  EXPECT_EQ(floatToE4m3(1e9f), 0x7E);
  EXPECT_EQ(floatToE4m3(-std::numeric_limits<float>::infinity()), 0xFE);
  EXPECT_EQ(floatToE4m3(std::nanf("")) & 0x7F, 0x7F);
  EXPECT_EQ(floatToE4m3(-0.0f), 0x80);
}

TEST(Numerics, Bf16RoundsToNearestEven) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3F80);
  // 1 + 2^-8 is the midpoint between 1 and 1 + 2^-7: ties to even (1.0).
  EXPECT_EQ(floatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  // 1 + 3*2^-8 is the midpoint between 1+2^-7 (odd) and 1+2^-6 (even).
  EXPECT_EQ(floatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_EQ(floatToBf16(std::nanf("")), 0x7FFF);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> value(-100.0f, 100.0f);
  for (int i = 0; i < 10000; ++i) {
    const float f = value(rng);
    const float rounded = bf16ToFloat(floatToBf16(f));
    // Nearest: no other bf16 neighbour is closer.
    const uint16_t h = floatToBf16(f);
    EXPECT_LE(std::fabs(rounded - f), std::fabs(bf16ToFloat(static_cast<uint16_t>(h + 1)) - f));
    EXPECT_LE(std::fabs(rounded - f), std::fabs(bf16ToFloat(static_cast<uint16_t>(h - 1)) - f));
  }
}

TEST(Numerics, Fp8ScaleRules) {
  EXPECT_EQ(fp8ScaleFromAmax(448.0f, false), 1.0f);
  EXPECT_EQ(fp8ScaleFromAmax(0.0f, false), 1e-4f / 448.0f);  // amax floor
  EXPECT_EQ(fp8ScaleFromAmax(448.0f * 3.0f, true), 4.0f);    // rounded up to a power of two
  EXPECT_EQ(fp8ScaleFromAmax(448.0f * 4.0f, true), 4.0f);    // already a power of two
  EXPECT_EQ(ue8m0ToScale(scaleToUe8m0(0.125f)), 0.125f);
  EXPECT_EQ(scaleToUe8m0(1.0f), 127);
}

TEST(Numerics, Fp8RowErrorBound) {
  std::mt19937_64 rng(99);
  for (int hidden : {1, 127, 128, 129, 300, 7168}) {
    for (bool pow2 : {false, true}) {
      std::vector<float> x(hidden), back(hidden);
      std::normal_distribution<float> value(0.0f, 3.0f);
      for (float& v : x) v = value(rng);
      std::vector<uint8_t> q(hidden);
      std::vector<float> scales(fp8BlockCount(hidden));
      quantizeRowE4m3(x.data(), hidden, pow2, q.data(), scales.data());
      dequantizeRowE4m3(q.data(), scales.data(), hidden, back.data());
      for (int c = 0; c < hidden; ++c) {
        const float scale = scales[c / kFp8BlockChannels];
        // Half an ulp of 3 mantissa bits relative, or half the subnormal step absolute.
        const float bound = std::max(std::fabs(x[c]) * 0.0625f, scale * std::ldexp(1.0f, -10));
        ASSERT_LE(std::fabs(back[c] - x[c]), bound * 1.0001f)
            << "hidden " << hidden << " channel " << c << " pow2 " << pow2;
      }
      // The block maximum maps to (at most) 448.
      for (size_t b = 0; b < scales.size(); ++b) EXPECT_GT(scales[b], 0.0f);
    }
  }
}

}  // namespace
}  // namespace nccl_moe
