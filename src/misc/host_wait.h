// Host waits on GPU work that other ranks must take part in (an NCCL collective, a rehearsal over
// the rail communicator): they give up after a timeout instead of blocking forever when a peer
// never joins or died.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdint>
#include <functional>

#include "misc/status.h"

namespace nccl_moe {

// Waits until the work queued on `stream` is done, at most `timeoutMs` milliseconds. On timeout:
// ncclRemoteError naming `what` (the work is still queued: the caller must not free what it uses).
Status waitStream(cudaStream_t stream, int timeoutMs, const char* what);

// Waits until a non-blocking NCCL communicator has finished the call in progress (its state is
// no longer ncclInProgress), at most `timeoutMs` milliseconds; its error, or ncclRemoteError
// naming `what` on timeout. A blocking communicator is never in progress: returns at once.
Status waitCommReady(ncclComm_t comm, int timeoutMs, const char* what);

// Spins until the word at `tag` (host memory a kernel stores into) equals `awaited`, for at most
// `limit`: true once it does (with acquire order: what the kernel stored before the tag is seen);
// false when `limit` passed first. For waits expected to end within microseconds, where a
// synchronising CUDA call would add its own wake-up; the caller falls back to one after false.
bool spinForTag(const volatile uint64_t* tag, uint64_t awaited, std::chrono::microseconds limit);

// Runs `work` on a thread of its own and waits at most `timeoutMs` for it. For a call into NCCL
// that may block the calling thread with no timeout of its own (the first collective on a blocking
// communicator connects to every peer inside the call, and waits there for a peer that never
// comes): on timeout the thread is left behind, still blocked (it ends when the caller aborts the
// communicator, or with the process), and ncclRemoteError names `what`. `work` must own everything
// it touches (capture by value or shared_ptr): it may outlive the caller's frame.
Status runBounded(int timeoutMs, const char* what, std::function<Status()> work);

}  // namespace nccl_moe
