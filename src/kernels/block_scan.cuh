// Exclusive prefix sums across one thread block, a chunk of blockDim values at a time: shared by
// the layout kernels (offsets from counts) and the low-latency combine (where each local expert's
// received rows start).
#pragma once

#include <cub/block/block_scan.cuh>

#include <cstdint>

namespace nccl_moe {

// Exclusive prefix sums of valueOf(i) over i < count in index order (one whole block of
// kBlockThreads calls it): visit(i, prefix, value). Returns the total, in every thread.
template <int kBlockThreads, class ValueOf, class Visit>
__device__ int64_t blockExclusiveScanOf(int count, ValueOf valueOf, Visit visit) {
  using Scan = cub::BlockScan<int64_t, kBlockThreads>;
  __shared__ typename Scan::TempStorage scratch;
  __shared__ int64_t chunkTotal;
  int64_t base = 0;
  for (int first = 0; first < count; first += kBlockThreads) {
    const int i = first + static_cast<int>(threadIdx.x);
    const int64_t value = i < count ? valueOf(i) : 0;
    int64_t offset = 0, total = 0;
    Scan(scratch).ExclusiveSum(value, offset, total);
    if (threadIdx.x == 0) chunkTotal = total;
    if (i < count) visit(i, base + offset, value);
    __syncthreads();
    base += chunkTotal;
    __syncthreads();
  }
  return base;
}

}  // namespace nccl_moe
