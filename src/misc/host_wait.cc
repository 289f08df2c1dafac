#include "misc/host_wait.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "misc/cuda_memory.h"
#include "misc/nccl_status.h"

namespace nccl_moe {

namespace {

// Polls `done` (true: finished, with *result set) with a growing pause until `timeoutMs` passes.
template <class Done>
bool pollUntil(int timeoutMs, Done done) {
  const auto limit = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  auto pause = std::chrono::microseconds(20);
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= limit) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(1000));
  }
}

}  // namespace

Status waitStream(cudaStream_t stream, int timeoutMs, const char* what) {
  cudaError_t state = cudaErrorNotReady;
  if (pollUntil(timeoutMs, [&] { return (state = cudaStreamQuery(stream)) != cudaErrorNotReady; }))
    return cudaStatus(state, what);
  return {ncclRemoteError,
          format("%s timed out after %d ms: another rank did not take part (it failed before, died, or "
                 "stalls); this rank's NCCL communicator still has the operation queued (abort it)",
                 what, timeoutMs)};
}

Status waitCommReady(ncclComm_t comm, int timeoutMs, const char* what) {
  ncclResult_t state = ncclInProgress;
  const bool finished = pollUntil(timeoutMs, [&] {
    if (ncclCommGetAsyncError(comm, &state) != ncclSuccess) state = ncclInternalError;
    return state != ncclInProgress;
  });
  if (finished) return ncclStatus(state, what);
  return {ncclRemoteError,
          format("%s timed out after %d ms: another rank did not take part (it failed before, died, or stalls)", what,
                 timeoutMs)};
}

bool spinForTag(const volatile uint64_t* tag, uint64_t awaited, std::chrono::microseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (uint32_t spins = 1;; ++spins) {
    if (*tag == awaited) {
      std::atomic_thread_fence(std::memory_order_acquire);
      return true;
    }
    // The clock is read every 64 polls: a poll of host memory is a few ns, a clock read ~20.
    if (spins % 64 == 0 && std::chrono::steady_clock::now() >= end) return false;
  }
}

Status runBounded(int timeoutMs, const char* what, std::function<Status()> work) {
  struct Outcome {
    std::mutex mutex;
    std::condition_variable done;
    bool finished = false;
    Status status;
  };
  auto outcome = std::make_shared<Outcome>();
  std::thread([outcome, work = std::move(work)] {
    Status status = work();
    std::lock_guard<std::mutex> lock(outcome->mutex);
    outcome->status = std::move(status);
    outcome->finished = true;
    outcome->done.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(outcome->mutex);
  if (outcome->done.wait_for(lock, std::chrono::milliseconds(timeoutMs), [&] { return outcome->finished; }))
    return outcome->status;
  return {ncclRemoteError,
          format("%s timed out after %d ms: another rank did not take part (it failed before, died, or stalls); "
                 "NCCL is still waiting for it inside the call on this rank's communicator (abort that "
                 "communicator: ncclCommAbort)",
                 what, timeoutMs)};
}

}  // namespace nccl_moe
