// GPU presence for tests: any CUDA error (no driver, no device) means "no GPU", and the test is
// skipped rather than failed.
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

// Device memory owned for the length of a test.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t count) : count_(count) {
    if (count_ > 0 && cudaMalloc(&data_, count_ * sizeof(T)) != cudaSuccess) data_ = nullptr;
  }
  ~DeviceArray() {
    if (data_) cudaFree(data_);
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return data_; }
  size_t bytes() const { return count_ * sizeof(T); }

 private:
  size_t count_;
  T* data_ = nullptr;
};

}  // namespace nccl_moe::test
