// RAII owners of CUDA resources, and the Status of a CUDA call.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "misc/status.h"

namespace nccl_moe {

inline Status cudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  return {ncclUnhandledCudaError, format("%s failed: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err))};
}

// `stream` is being captured into a CUDA graph (or its state cannot be read: treated as captured,
// so that nothing capture-unsafe is done to it).
inline bool streamIsCapturing(cudaStream_t stream) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  return cudaStreamIsCapturing(stream, &capture) != cudaSuccess || capture != cudaStreamCaptureStatusNone;
}

// Owns a pointer released by `Release` (cudaFree, cudaFreeHost, ...).
template <class T, cudaError_t (*Release)(void*)>
class CudaPointer {
 public:
  CudaPointer() = default;
  explicit CudaPointer(T* p) : p_(p) {}
  ~CudaPointer() { reset(); }
  CudaPointer(CudaPointer&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  CudaPointer& operator=(CudaPointer&& other) noexcept {
    if (this != &other) {
      reset();
      p_ = std::exchange(other.p_, nullptr);
    }
    return *this;
  }
  CudaPointer(const CudaPointer&) = delete;
  CudaPointer& operator=(const CudaPointer&) = delete;

  T* get() const { return p_; }
  // Gives the pointer up without freeing it: for memory a kernel that may never finish (a
  // collective a peer never joined) still writes to.
  T* abandon() { return std::exchange(p_, nullptr); }
  void reset() {
    if (p_) Release(p_);
    p_ = nullptr;
  }

 private:
  T* p_ = nullptr;
};

inline cudaError_t freeDevice(void* p) { return cudaFree(p); }
inline cudaError_t freePinned(void* p) { return cudaFreeHost(p); }

template <class T = void>
using DeviceMemory = CudaPointer<T, freeDevice>;
template <class T = void>
using PinnedMemory = CudaPointer<T, freePinned>;

template <class T>
Status allocateDevice(size_t count, DeviceMemory<T>* out, const char* what) {
  void* p = nullptr;
  if (Status s = cudaStatus(cudaMalloc(&p, count * sizeof(T) > 0 ? count * sizeof(T) : 1), what); !s.isOk()) return s;
  *out = DeviceMemory<T>(static_cast<T*>(p));
  return Status::ok();
}

// Page-locked host memory mapped into the device's address space (read by the host without a
// stream synchronisation).
template <class T>
Status allocateMapped(size_t count, PinnedMemory<T>* out, const char* what) {
  void* p = nullptr;
  if (Status s = cudaStatus(cudaHostAlloc(&p, count * sizeof(T), cudaHostAllocMapped | cudaHostAllocPortable), what);
      !s.isOk())
    return s;
  *out = PinnedMemory<T>(static_cast<T*>(p));
  return Status::ok();
}

class CudaEvent {
 public:
  CudaEvent() = default;
  ~CudaEvent() {
    if (event_) cudaEventDestroy(event_);
  }
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  Status create() { return cudaStatus(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "cudaEventCreate"); }
  // An event cudaEventElapsedTime can measure between.
  Status createTimed() { return cudaStatus(cudaEventCreate(&event_), "cudaEventCreate(timed)"); }
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

class CudaStream {
 public:
  CudaStream() = default;
  ~CudaStream() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  Status create() {
    return cudaStatus(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace nccl_moe
