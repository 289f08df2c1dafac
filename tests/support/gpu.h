// GPU presence for tests: any CUDA error (no driver, no device) means "no GPU", and the test is
// skipped rather than failed. (Device memory in a test: the library's DeviceMemory, misc/cuda_memory.h.)
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

namespace nccl_moe::test {

inline bool gpuAvailable() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

#define NCCL_MOE_SKIP_WITHOUT_GPU() \
  if (!::nccl_moe::test::gpuAvailable()) GTEST_SKIP() << "no CUDA device: GPU test skipped"

}  // namespace nccl_moe::test
