#include "reference/fp8.h"

#include <algorithm>
#include <cmath>

#include "misc/numerics.h"

namespace nccl_moe {

void quantizeRowE4m3(const float* x, int hidden, bool powerOfTwoScales, uint8_t* q, float* scales) {
  for (int block = 0; block * kFp8BlockChannels < hidden; ++block) {
    const int begin = block * kFp8BlockChannels;
    const int end = std::min(hidden, begin + kFp8BlockChannels);
    float amax = 0.0f;
    for (int c = begin; c < end; ++c) amax = std::fmax(amax, std::fabs(x[c]));
    const float scale = fp8ScaleFromAmax(amax, powerOfTwoScales);
    scales[block] = scale;
    for (int c = begin; c < end; ++c) q[c] = floatToE4m3(x[c] / scale);
  }
}

void dequantizeRowE4m3(const uint8_t* q, const float* scales, int hidden, float* x) {
  for (int c = 0; c < hidden; ++c) x[c] = e4m3ToFloat(q[c]) * scales[c / kFp8BlockChannels];
}

}  // namespace nccl_moe
