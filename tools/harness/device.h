// Device memory and error checks for the programs that drive the library on a GPU (nccl-moe-perf,
// nccl-moe-demo, the virtual-cluster rank check). A failed CUDA, NCCL or nccl-moe call throws
// std::runtime_error naming the call and the reason; the tools' runToolMain prints it and exits
// with status 1.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "misc/cuda_memory.h"
#include "nccl_moe.h"

namespace nccl_moe::harness {

void checkCuda(cudaError_t result, const char* what);
void checkNccl(ncclResult_t result, const char* what);
// Adds ncclMoeGetLastError(comm): the argument, rank or limit that failed.
void checkMoe(ncclResult_t result, const char* what, ncclMoeComm_t comm);

// cudaMalloc'ed bytes, owned by the library's DeviceMemory (freed at scope exit), with the copies
// the programs make. Zero bytes allocate a minimal block, so get() is never null.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;

  template <class T = void>
  T* get() const { return static_cast<T*>(memory_.get()); }
  size_t bytes() const { return bytes_; }

  // Copies of `bytes` (at most bytes()) from / to host memory, ordered on `stream` and complete on
  // return (the tools' streams are non-blocking: a plain cudaMemcpy would not be ordered with them).
  void upload(const void* host, size_t bytes, cudaStream_t stream);
  void download(void* host, size_t bytes, cudaStream_t stream) const;
  template <class T>
  void upload(const std::vector<T>& host, cudaStream_t stream) { upload(host.data(), host.size() * sizeof(T), stream); }
  void fill(uint8_t byte, cudaStream_t stream);  // every byte, complete on return

 private:
  DeviceMemory<> memory_;
  size_t bytes_ = 0;
};

}  // namespace nccl_moe::harness
