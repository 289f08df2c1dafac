// The FP8 quantisation kernel against the CPU reference (bit for bit), and the shared software
// E4M3 conversion against the hardware conversion for every float class that matters.
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../support/gpu.h"
#include "kernels/fp8_quantize.h"
#include "kernels/fp8_row.cuh"
#include "misc/cuda_memory.h"
#include "reference/fp8.h"
#include "reference/random_routing.h"

namespace nccl_moe::test {
namespace {

// `count` values of T on the device for the length of a test, owned by the library's DeviceMemory.
template <class T>
DeviceMemory<T> deviceArray(size_t count) {
  DeviceMemory<T> memory;
  const Status status = allocateDevice(count, &memory, "cudaMalloc(test)");
  EXPECT_TRUE(status.isOk()) << status.message();
  return memory;
}

__global__ void convertBothWays(const float* in, int n, uint8_t* software, uint8_t* hardware) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    software[i] = floatToE4m3(in[i]);
    hardware[i] = static_cast<uint8_t>(__nv_cvt_float_to_fp8(in[i], __NV_SATFINITE, __NV_E4M3));
  }
}

TEST(Fp8Kernel, SoftwareConversionMatchesHardware) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  std::vector<float> values;
  for (int code = 0; code < 256; ++code) {
    const float v = e4m3ToFloat(static_cast<uint8_t>(code));
    if (v != v) continue;
    const float next = e4m3ToFloat(static_cast<uint8_t>(code + 1 < 256 ? code + 1 : code));
    values.push_back(v);
    if (next == next) values.push_back((v + next) / 2);  // ties
  }
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<float> log2Magnitude(-14.0f, 12.0f);
  for (int i = 0; i < 100000; ++i) values.push_back(std::exp2(log2Magnitude(rng)) * (i % 2 ? 1.0f : -1.0f));
  const int n = static_cast<int>(values.size());
  const auto in = deviceArray<float>(n);
  const auto software = deviceArray<uint8_t>(n), hardware = deviceArray<uint8_t>(n);
  ASSERT_EQ(cudaMemcpy(in.get(), values.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  convertBothWays<<<64, 256>>>(in.get(), n, software.get(), hardware.get());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint8_t> sw(n), hw(n);
  ASSERT_EQ(cudaMemcpy(sw.data(), software.get(), n, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(hw.data(), hardware.get(), n, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(sw[i], hw[i]) << "value " << values[i];
    ASSERT_EQ(sw[i], floatToE4m3(values[i])) << "device and host software differ at " << values[i];
  }
}

__global__ void convertPairs(const float* in, int pairs, uint16_t* out) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < pairs; i += gridDim.x * blockDim.x)
    out[i] = static_cast<uint16_t>(e4m3Pair(in[2 * i], in[2 * i + 1]));
}

// The kernels' pair conversion (hardware on sm_89 and later) gives floatToE4m3's codes, NaNs of
// either sign, infinities, ties and subnormals included.
TEST(Fp8Kernel, PairConversionMatchesSoftware) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  std::vector<float> values = {std::nanf(""), -std::nanf(""), INFINITY, -INFINITY, 0.0f, -0.0f, 448.0f, -449.0f,
                               1e-30f, -1e-30f, 0.0009765625f, 0.001953125f * 1.5f};
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> log2Magnitude(-16.0f, 10.0f);
  for (int i = 0; i < 50000; ++i) values.push_back(std::exp2(log2Magnitude(rng)) * (i % 3 ? 1.0f : -1.0f));
  for (int code = 0; code < 255; ++code) {
    const float v = e4m3ToFloat(static_cast<uint8_t>(code)), next = e4m3ToFloat(static_cast<uint8_t>(code + 1));
    if (v == v && next == next) values.push_back((v + next) / 2);
  }
  if (values.size() % 2) values.push_back(1.0f);
  const int pairs = static_cast<int>(values.size() / 2);
  const auto in = deviceArray<float>(values.size());
  const auto out = deviceArray<uint16_t>(pairs);
  ASSERT_EQ(cudaMemcpy(in.get(), values.data(), values.size() * sizeof(float), cudaMemcpyHostToDevice),
            cudaSuccess);
  convertPairs<<<64, 256>>>(in.get(), pairs, out.get());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint16_t> codes(pairs);
  ASSERT_EQ(cudaMemcpy(codes.data(), out.get(), codes.size() * sizeof(uint16_t), cudaMemcpyDeviceToHost), cudaSuccess);
  for (int i = 0; i < pairs; ++i) {
    ASSERT_EQ(codes[i] & 0xFF, floatToE4m3(values[2 * i])) << "low value " << values[2 * i];
    ASSERT_EQ(codes[i] >> 8, floatToE4m3(values[2 * i + 1])) << "high value " << values[2 * i + 1];
  }
}

TEST(Fp8Kernel, QuantizeRowsMatchesReference) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  std::mt19937_64 rng(testing::UnitTest::GetInstance()->random_seed() + 17);
  for (ElementType type : {ElementType::kBf16, ElementType::kFp32}) {
    for (int hidden : {1, 100, 128, 7168, 7169}) {
      for (bool pow2 : {false, true}) {
        const int64_t rows = 37;
        HostRows x = randomRows(type, rows, hidden, 50.0f, rng);
        for (int c = 0; c < hidden; c += 3) x.set(5, c, 0.0f);  // a row with small amax blocks
        const int blocks = fp8BlockCount(hidden);
        const auto dx = deviceArray<uint8_t>(x.bytes().size()), dq = deviceArray<uint8_t>(rows * hidden);
        const auto dscales = deviceArray<float>(rows * blocks);
        ASSERT_EQ(cudaMemcpy(dx.get(), x.bytes().data(), x.bytes().size(), cudaMemcpyHostToDevice), cudaSuccess);
        ASSERT_EQ(cudaMemset(dq.get(), 0xAB, rows * hidden), cudaSuccess);  // poison
        ASSERT_EQ(launchQuantizeRowsE4m3(dx.get(), type, rows, hidden, pow2, dq.get(), dscales.get(), 8, nullptr),
                  cudaSuccess);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::vector<uint8_t> q(rows * hidden);
        std::vector<float> scales(rows * blocks);
        ASSERT_EQ(cudaMemcpy(q.data(), dq.get(), q.size(), cudaMemcpyDeviceToHost), cudaSuccess);
        ASSERT_EQ(cudaMemcpy(scales.data(), dscales.get(), scales.size() * sizeof(float), cudaMemcpyDeviceToHost),
                  cudaSuccess);
        std::vector<float> row(hidden), wantScales(blocks);
        std::vector<uint8_t> wantQ(hidden);
        for (int64_t r = 0; r < rows; ++r) {
          for (int c = 0; c < hidden; ++c) row[c] = x.get(r, c);
          quantizeRowE4m3(row.data(), hidden, pow2, wantQ.data(), wantScales.data());
          ASSERT_EQ(0, std::memcmp(wantQ.data(), q.data() + r * hidden, hidden)) << "row " << r << " hidden " << hidden;
          ASSERT_EQ(0, std::memcmp(wantScales.data(), scales.data() + r * blocks, blocks * sizeof(float)));
        }
      }
    }
  }
}

// One warp quantises row r into the targets of `masks[r]` among kTargets places (target b's codes
// at codes + (r * kTargets + b) * stride + shift, its scales likewise): what the low-latency dispatch
// does for a token's send slots.
constexpr int kTargets = 6;

__global__ void quantizeToEach(const void* x, int type, int rows, int hidden, bool pow2, const uint32_t* masks,
                               uint8_t* codes, float* scales, size_t stride, int shift) {
  const int r = blockIdx.x;
  if (r >= rows) return;
  const int lane = threadIdx.x;
  const size_t rowBytes = static_cast<size_t>(hidden) * (type == static_cast<int>(ElementType::kBf16) ? 2 : 4);
  uint8_t* laneCodes = lane < kTargets ? codes + (static_cast<size_t>(r) * kTargets + lane) * stride + shift : nullptr;
  float* laneScales =
      lane < kTargets ? scales + (static_cast<size_t>(r) * kTargets + lane) * fp8BlockCount(hidden) : nullptr;
  warpQuantizeRowE4m3ToEach(masks[r], laneCodes, laneScales, static_cast<const uint8_t*>(x) + r * rowBytes, type,
                            hidden, pow2);
}

// Into each chosen target the reference's bits, nothing into the others or around the rows: whole
// blocks (one pass) and a shorter last block or misaligned codes (one quantisation per target).
TEST(Fp8Kernel, QuantizeRowToEachWritesTheReferenceIntoChosenTargetsOnly) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  std::mt19937_64 rng(testing::UnitTest::GetInstance()->random_seed() + 23);
  for (ElementType type : {ElementType::kBf16, ElementType::kFp32}) {
    for (int hidden : {128, 7168, 7169, 100}) {
      for (int shift : {0, 4}) {
        const bool pow2 = shift != 0;
        const int rows = 9, blocks = fp8BlockCount(hidden);
        const size_t stride = static_cast<size_t>(hidden) + 64;
        HostRows x = randomRows(type, rows, hidden, 50.0f, rng);
        std::vector<uint32_t> masks(rows);
        for (int r = 0; r < rows; ++r) masks[r] = r == 0 ? 0u : static_cast<uint32_t>(rng() % (1u << kTargets));
        masks[1] = (1u << kTargets) - 1;
        const auto dx = deviceArray<uint8_t>(x.bytes().size());
        const auto dmasks = deviceArray<uint32_t>(rows);
        const auto dcodes = deviceArray<uint8_t>(rows * kTargets * stride);
        const auto dscales = deviceArray<float>(rows * kTargets * blocks);
        ASSERT_EQ(cudaMemcpy(dx.get(), x.bytes().data(), x.bytes().size(), cudaMemcpyHostToDevice), cudaSuccess);
        ASSERT_EQ(cudaMemcpy(dmasks.get(), masks.data(), rows * 4, cudaMemcpyHostToDevice), cudaSuccess);
        ASSERT_EQ(cudaMemset(dcodes.get(), 0xAB, rows * kTargets * stride), cudaSuccess);  // poison
        ASSERT_EQ(cudaMemset(dscales.get(), 0xCD, rows * kTargets * blocks * 4), cudaSuccess);
        quantizeToEach<<<rows, 32>>>(dx.get(), static_cast<int>(type), rows, hidden, pow2, dmasks.get(), dcodes.get(),
                                     dscales.get(), stride, shift);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::vector<uint8_t> codes(rows * kTargets * stride);
        std::vector<float> scales(rows * kTargets * blocks);
        ASSERT_EQ(cudaMemcpy(codes.data(), dcodes.get(), codes.size(), cudaMemcpyDeviceToHost), cudaSuccess);
        ASSERT_EQ(cudaMemcpy(scales.data(), dscales.get(), scales.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
        std::vector<float> row(hidden), wantScales(blocks);
        std::vector<uint8_t> wantQ(hidden), poison(stride, 0xAB);
        std::vector<float> poisonScales(blocks);
        std::memset(poisonScales.data(), 0xCD, blocks * 4);
        for (int r = 0; r < rows; ++r) {
          for (int c = 0; c < hidden; ++c) row[c] = x.get(r, c);
          quantizeRowE4m3(row.data(), hidden, pow2, wantQ.data(), wantScales.data());
          for (int b = 0; b < kTargets; ++b) {
            const uint8_t* got = codes.data() + (static_cast<size_t>(r) * kTargets + b) * stride;
            const float* gotScales = scales.data() + (static_cast<size_t>(r) * kTargets + b) * blocks;
            const bool chosen = (masks[r] >> b) & 1u;
            const std::string where = "row " + std::to_string(r) + " target " + std::to_string(b) + " hidden " +
                                      std::to_string(hidden) + " shift " + std::to_string(shift);
            ASSERT_EQ(0, std::memcmp(got, poison.data(), shift)) << where;  // before the row
            ASSERT_EQ(0, std::memcmp(got + shift, chosen ? wantQ.data() : poison.data(), hidden)) << where;
            ASSERT_EQ(0, std::memcmp(got + shift + hidden, poison.data(), stride - hidden - shift)) << where;
            ASSERT_EQ(0, std::memcmp(gotScales, chosen ? wantScales.data() : poisonScales.data(), blocks * 4)) << where;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace nccl_moe::test
