// Host checks of the low-latency (LL) calls before anything is enqueued (docs/low_latency.md
// section 8): the mode is on and built for this group, the argument structs, and the order of the
// send and receive halves. Contents (expert ids, K across ranks) are checked on the device.
#pragma once

#include <array>
#include <cstddef>

#include "core/config.h"
#include "misc/status.h"
#include "nccl_moe.h"

namespace nccl_moe {

// The LL mode is on (lowLatencyMaxTokens > 0), on one NVLink domain or several (two hops). `call`
// names the API function for the message.
Status checkLowLatencyAvailable(const CommConfig& config, const char* call);

Status checkLowLatencyDispatchArgs(const CommConfig& config, int rank, const ncclMoeLowLatencyDispatchArgs_t* args);
Status checkLowLatencyCombineArgs(const CommConfig& config, int rank, const ncclMoeLowLatencyCombineArgs_t* args);

// The send halves of one kind of operation (dispatch or combine) that wait for their receive
// halves, oldest first, with the arguments each was given (its receive half writes the outputs
// named there). At most kMaxOutstanding (docs/low_latency.md section 6.2).
template <class Args>
class OutstandingHalves {
 public:
  static constexpr int kMaxOutstanding = 2;

  explicit OutstandingHalves(const char* operation) : operation_(operation) {}

  int count() const { return count_; }
  // A send half may start: fewer than kMaxOutstanding wait.
  Status checkSend() const {
    if (count_ < kMaxOutstanding) return Status::ok();
    return Status::invalidUsage(format("%d low-latency %s send halves are already outstanding (not received): call "
                                       "the receive half of the oldest first",
                                       count_, operation_));
  }
  // A plain call (both halves) may start: none waits (it would receive before the older ones).
  Status checkFused() const {
    if (count_ == 0) return Status::ok();
    return Status::invalidUsage(format("%d low-latency %s send half%s outstanding: call the receive half before a "
                                       "plain %s (receive halves complete in the order of their send halves)",
                                       count_, operation_, count_ == 1 ? " is" : "s are", operation_));
  }
  // A receive half may start: a send half waits for it.
  Status checkReceive() const {
    if (count_ > 0) return Status::ok();
    return Status::invalidUsage(
        format("no low-latency %s send half is outstanding: every receive half needs its send half first", operation_));
  }
  void push(const Args& args) { pending_[(first_ + count_++) % kMaxOutstanding] = args; }
  // The arguments of the oldest send half (checkReceive first).
  const Args& oldest() const { return pending_[first_]; }
  void pop() {
    first_ = (first_ + 1) % kMaxOutstanding;
    --count_;
  }

 private:
  const char* operation_;
  std::array<Args, kMaxOutstanding> pending_{};
  int first_ = 0;
  int count_ = 0;
};

}  // namespace nccl_moe
