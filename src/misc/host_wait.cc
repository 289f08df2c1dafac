#include "misc/host_wait.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "misc/cuda_memory.h"

namespace nccl_moe {

Status waitStream(cudaStream_t stream, int timeoutMs, const char* what) {
  const auto start = std::chrono::steady_clock::now();
  const auto limit = start + std::chrono::milliseconds(timeoutMs);
  auto pause = std::chrono::microseconds(20);
  for (;;) {
    const cudaError_t state = cudaStreamQuery(stream);
    if (state != cudaErrorNotReady) return cudaStatus(state, what);
    if (std::chrono::steady_clock::now() >= limit)
      return {ncclRemoteError,
              format("%s timed out after %d ms: another rank did not take part (it failed before, died, or "
                     "stalls); this rank's NCCL communicator still has the operation queued (abort it)",
                     what, timeoutMs)};
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(1000));
  }
}

}  // namespace nccl_moe
