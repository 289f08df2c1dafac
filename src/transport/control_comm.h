// The library's own communicator for its host-side exchanges once every rank has agreed to start
// (the set-up exchanges, the closing round trip of destroy), split from the caller's.
//
// Why not the caller's: an exchange a dead or stalled rank never joins leaves an NCCL kernel
// running forever. On the caller's communicator only the caller could abort it, and until then
// every cudaFree of the process (which waits for the device) would block, so destroy would hang.
// This one is non-blocking: every step on it is bounded by the timeout, and after a failure it is
// aborted, which ends its kernels; the caller's communicator is left as it was.
#pragma once

#include <nccl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "misc/status.h"

namespace nccl_moe {

class ControlComm {
 public:
  // Collective over `parent` (every rank of it, color 0, same order), at most `timeoutMs`.
  static Status create(ncclComm_t parent, int rank, int ranks, int timeoutMs, std::unique_ptr<ControlComm>* out);
  ~ControlComm();
  ControlComm(const ControlComm&) = delete;
  ControlComm& operator=(const ControlComm&) = delete;

  // Every rank's `bytes` bytes, rank order (transport/peer_buffer.h allGatherBytes); on any
  // failure the communicator is aborted and every later exchange fails at once.
  Status allGather(const void* mine, size_t bytes, std::vector<uint8_t>* all);
  // Ends its kernels and frees it (after a failure elsewhere, or a failed creation). Idempotent.
  void abort();
  // For exchanges that take a communicator (the caller aborts this one if such an exchange fails).
  ncclComm_t get() const { return comm_; }

 private:
  ControlComm() = default;
  ncclComm_t comm_ = nullptr;
  int ranks_ = 0;
  int timeoutMs_ = 0;
};

}  // namespace nccl_moe
