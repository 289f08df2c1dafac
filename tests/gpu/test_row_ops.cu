// The warp row operations every kernel moves and sums rows with (kernels/row_ops.cuh): warpCopyBytes
// and warpCopyBytesToEach against memcpy, at sizes around the unrolled round (32 lanes x 8 x 16
// bytes), aligned and not, with the bytes around each destination poisoned so that a write outside
// it is caught; warpSumRows against the CPU's sums in row order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "../support/gpu.h"
#include "kernels/row_ops.cuh"
#include "misc/cuda_memory.h"
#include "misc/numerics.h"

namespace nccl_moe::test {
namespace {

constexpr uint8_t kPoison = 0xA5;
constexpr size_t kGuard = 64;  // poisoned bytes before and after each destination

__global__ void copyOnce(uint8_t* dst, const uint8_t* src, size_t bytes) {
  if (threadIdx.x < kWarp) warpCopyBytes(dst, src, bytes);
}

// Three destinations `stride` apart, the bytes to the ones whose bit is set in `targets`.
__global__ void copyToEach(uint8_t* dst, size_t stride, uint32_t targets, const uint8_t* src, size_t bytes) {
  if (threadIdx.x < kWarp) warpCopyBytesToEach(targets, [&](int b) { return dst + b * stride; }, src, bytes);
}

std::vector<uint8_t> randomBytes(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> bytes(count);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng() & 0xFF);
  return bytes;
}

// Sizes below, at and around multiples of one unrolled round (4096 bytes), a BF16 row of 7168, odd
// sizes (the 2-byte and byte paths), and 0.
const size_t kSizes[] = {0, 1, 2, 15, 16, 48, 512, 4080, 4096, 4112, 8192 + 16, 14336, 14336 + 80, 7168 + 7, 20002};

TEST(RowOps, WarpCopyBytesMatchesMemcpyAndWritesNothingElse) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  for (size_t bytes : kSizes)
    for (size_t srcOffset : {size_t{0}, size_t{2}, size_t{1}})
      for (size_t dstOffset : {size_t{0}, size_t{16}, size_t{2}}) {
        const std::vector<uint8_t> src = randomBytes(bytes + srcOffset, static_cast<uint32_t>(bytes * 7 + srcOffset));
        const size_t span = kGuard + dstOffset + bytes + kGuard;
        DeviceMemory<uint8_t> dSrc, dDst;
        ASSERT_TRUE(allocateDevice(src.size() + 1, &dSrc, "cudaMalloc(src)").isOk());
        ASSERT_TRUE(allocateDevice(span, &dDst, "cudaMalloc(dst)").isOk());
        ASSERT_EQ(cudaMemcpy(dSrc.get(), src.data(), src.size(), cudaMemcpyHostToDevice), cudaSuccess);
        ASSERT_EQ(cudaMemset(dDst.get(), kPoison, span), cudaSuccess);
        copyOnce<<<1, 64>>>(dDst.get() + kGuard + dstOffset, dSrc.get() + srcOffset, bytes);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::vector<uint8_t> out(span);
        ASSERT_EQ(cudaMemcpy(out.data(), dDst.get(), span, cudaMemcpyDeviceToHost), cudaSuccess);
        for (size_t i = 0; i < span; ++i) {
          const bool inside = i >= kGuard + dstOffset && i < kGuard + dstOffset + bytes;
          const uint8_t want = inside ? src[srcOffset + i - kGuard - dstOffset] : kPoison;
          ASSERT_EQ(out[i], want) << "byte " << i << " of a copy of " << bytes << " bytes (source offset " << srcOffset
                                  << ", destination offset " << dstOffset << ")";
        }
      }
}

TEST(RowOps, WarpCopyBytesToEachWritesTheChosenTargetsOnly) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  for (size_t bytes : kSizes)
    for (uint32_t targets : {0u, 1u, 5u, 7u}) {
      const std::vector<uint8_t> src = randomBytes(bytes, static_cast<uint32_t>(bytes + targets));
      const size_t stride = kGuard + ((bytes + 15) / 16) * 16 + kGuard;  // keeps 16-byte alignment
      const size_t span = 3 * stride;
      DeviceMemory<uint8_t> dSrc, dDst;
      ASSERT_TRUE(allocateDevice(bytes + 1, &dSrc, "cudaMalloc(src)").isOk());
      ASSERT_TRUE(allocateDevice(span, &dDst, "cudaMalloc(dst)").isOk());
      ASSERT_EQ(cudaMemcpy(dSrc.get(), src.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
      ASSERT_EQ(cudaMemset(dDst.get(), kPoison, span), cudaSuccess);
      copyToEach<<<1, 32>>>(dDst.get() + kGuard, stride, targets, dSrc.get(), bytes);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      std::vector<uint8_t> out(span);
      ASSERT_EQ(cudaMemcpy(out.data(), dDst.get(), span, cudaMemcpyDeviceToHost), cudaSuccess);
      for (size_t i = 0; i < span; ++i) {
        const int b = static_cast<int>(i / stride);
        const size_t at = i % stride;
        const bool inside = (targets >> b & 1u) != 0 && at >= kGuard && at < kGuard + bytes;
        const uint8_t want = inside ? src[at - kGuard] : kPoison;
        ASSERT_EQ(out[i], want) << "byte " << at << " of target " << b << ", copy of " << bytes << " bytes, targets "
                                << targets;
      }
    }
}

// Rows i at rows + i * stride (elements), summed by one warp into dst.
__global__ void sumRows(int count, const uint8_t* rows, size_t strideBytes, int hidden, int type, uint8_t* dst) {
  if (threadIdx.x < kWarp)
    warpSumRows(count, [&](int i) { return rows + static_cast<size_t>(i) * strideBytes; }, hidden, type, dst);
}

// warpSumRows against the CPU: float32 additions in row order from 0, rounded once to the row type,
// for 0 to 9 rows (batches of 4 in flight and their tails), BF16 and FP32, hidden sizes on the
// vector path and off it (not a multiple of 16 bytes), the guard bytes after the output untouched.
TEST(RowOps, WarpSumRowsAddsInRowOrderBitForBit) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> value(-4.0f, 4.0f);
  for (int type : {static_cast<int>(ElementType::kBf16), static_cast<int>(ElementType::kFp32)})
    for (int hidden : {8, 1024, 7168, 7, 1000 + 3})
      for (int count = 0; count <= 9; ++count) {
        const size_t element = type == static_cast<int>(ElementType::kBf16) ? 2 : 4;
        const size_t rowBytes = hidden * element, stride = (rowBytes + 15) / 16 * 16;
        std::vector<uint8_t> rows(std::max<size_t>(stride * count, 16), 0);
        std::vector<float> want(static_cast<size_t>(hidden), 0.0f);
        for (int i = 0; i < count; ++i)
          for (int c = 0; c < hidden; ++c) {
            const float x = value(rng);
            uint8_t* at = rows.data() + i * stride + c * element;
            if (element == 2) {
              const uint16_t h = floatToBf16(x);
              std::memcpy(at, &h, 2);
              want[c] += bf16ToFloat(h);
            } else {
              std::memcpy(at, &x, 4);
              want[c] += x;
            }
          }
        DeviceMemory<uint8_t> dRows, dOut;
        ASSERT_TRUE(allocateDevice(rows.size(), &dRows, "cudaMalloc(rows)").isOk());
        ASSERT_TRUE(allocateDevice(stride + kGuard, &dOut, "cudaMalloc(out)").isOk());
        ASSERT_EQ(cudaMemcpy(dRows.get(), rows.data(), rows.size(), cudaMemcpyHostToDevice), cudaSuccess);
        ASSERT_EQ(cudaMemset(dOut.get(), kPoison, stride + kGuard), cudaSuccess);
        sumRows<<<1, 32>>>(count, dRows.get(), stride, hidden, type, dOut.get());
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::vector<uint8_t> out(stride + kGuard);
        ASSERT_EQ(cudaMemcpy(out.data(), dOut.get(), out.size(), cudaMemcpyDeviceToHost), cudaSuccess);
        for (int c = 0; c < hidden; ++c) {
          if (element == 2) {
            uint16_t got;
            std::memcpy(&got, out.data() + c * 2, 2);
            ASSERT_EQ(got, floatToBf16(want[c])) << "channel " << c << " of " << count << " bf16 rows, hidden " << hidden;
          } else {
            float got;
            std::memcpy(&got, out.data() + c * 4, 4);
            ASSERT_EQ(floatBits(got), floatBits(want[c])) << "channel " << c << " of " << count << " rows, hidden "
                                                          << hidden;
          }
        }
        for (size_t i = rowBytes; i < out.size(); ++i) ASSERT_EQ(out[i], kPoison) << "byte " << i << " after the row";
      }
}

}  // namespace
}  // namespace nccl_moe::test
