#include "tools/harness/device.h"

#include <stdexcept>
#include <string>
#include <utility>

namespace nccl_moe::harness {

void checkCuda(cudaError_t result, const char* what) {
  if (result != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(result));
}

void checkNccl(ncclResult_t result, const char* what) {
  if (result != ncclSuccess) throw std::runtime_error(std::string(what) + ": " + ncclGetErrorString(result));
}

void checkMoe(ncclResult_t result, const char* what, ncclMoeComm_t comm) {
  if (result == ncclSuccess) return;
  throw std::runtime_error(std::string(what) + ": " + ncclMoeGetErrorString(result) + ": " +
                           ncclMoeGetLastError(comm));
}

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  void* p = nullptr;
  checkCuda(cudaMalloc(&p, bytes ? bytes : 16), "cudaMalloc");
  memory_ = DeviceMemory<>(p);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : memory_(std::move(other.memory_)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    memory_ = std::move(other.memory_);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::upload(const void* host, size_t bytes, cudaStream_t stream) {
  if (bytes > bytes_)
    throw std::logic_error("DeviceBuffer::upload: " + std::to_string(bytes) + " bytes into " + std::to_string(bytes_));
  if (bytes == 0) return;
  checkCuda(cudaMemcpyAsync(memory_.get(), host, bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync to the device");
  checkCuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

void DeviceBuffer::download(void* host, size_t bytes, cudaStream_t stream) const {
  if (bytes > bytes_)
    throw std::logic_error("DeviceBuffer::download: " + std::to_string(bytes) + " bytes from " + std::to_string(bytes_));
  if (bytes == 0) return;
  checkCuda(cudaMemcpyAsync(host, memory_.get(), bytes, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync to the host");
  checkCuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

void DeviceBuffer::fill(uint8_t byte, cudaStream_t stream) {
  if (bytes_ == 0) return;
  checkCuda(cudaMemsetAsync(memory_.get(), byte, bytes_, stream), "cudaMemsetAsync");
  checkCuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

}  // namespace nccl_moe::harness
