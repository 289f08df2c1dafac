// The network phase of the two-hop (HybridEP) path: NCCL point-to-point between rail peers (the
// ranks with the same local index in every domain), on a communicator split from the EP one.
//
// Progress design. A job (the routing meta in the layout, the packed rows in dispatch, the domain
// partials in combine) is enqueued on the caller's stream by the calling thread, between the
// kernels that produce and consume it: a prologue kernel stores the call's epoch, one NCCL group
// moves every slot at its full size (maxTokensPerRank rows: the host never needs the device's row
// counts, so there is no host synchronisation and CUDA graphs capture the whole call), and a signal
// kernel stores the epoch into the domain peers' signal slots that the consumer kernels wait on.
// NCCL waits have no timeout of their own, so a watchdog thread follows every group through two
// events: a group still running `timeout` after it started (a rail peer died) records a timeout
// error naming the phase and the rail peer in the host-mapped error record, and aborts the rail
// communicator, whose kernels then return. The signal kernel behind them sees the record and
// signals nothing, so the kernels waiting for it time out too and the call ends with the error.
//
// Measured on an H100 (NCCL 2.28.3, with and without MPS): NCCL's kernels on a second stream did not
// make progress while a kernel of the same process spun waiting for them, so a design that issues
// the transfers from a helper thread while the caller's kernels wait for them hung. Here nothing
// waits for a group except work ordered after it; the dispatch's pull of the rows inside the domain
// runs beside its group (issueBeside) but waits only for the domain peers' staging.
#pragma once

#include <nccl.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/cuda_memory.h"
#include "core/status.h"
#include "kernels/kernel_args.h"

namespace nccl_moe {

// One rail peer's part of a job: `rows` rows of rowBytes each way.
struct RailLeg {
  int peer = 0;  // rank in the rail communicator (= domain index)
  const void* send = nullptr;
  void* recv = nullptr;
  int64_t rows = 0;
  size_t rowBytes = 0;
};

struct RailJob {
  const char* what = "";  // for messages: "layout meta", "dispatch rows", "combine partials"
  int phase = 0;          // signalled when the transfers have landed
  bool selfOnly = false;  // signal this rank only (else every domain peer)
  std::vector<RailLeg> legs;
};

class RailExchange {
 public:
  // Collective over `parent`: splits the rail communicator (color = local index, key = domain).
  // `view.errorHost` receives the watchdog's timeout record.
  static Status create(ncclComm_t parent, int device, const DomainView& view, int timeoutMs,
                       std::unique_ptr<RailExchange>* out);
  ~RailExchange();
  RailExchange(const RailExchange&) = delete;
  RailExchange& operator=(const RailExchange&) = delete;

  // Runs `job` on the exchange's own stream and waits (set-up only: NCCL connects now).
  Status rehearse(const RailJob& job);
  // Enqueues `job` on `stream` (prologue, NCCL group, signal) and hands it to the watchdog.
  Status issue(const RailJob& job, cudaStream_t stream);
  // The same on the exchange's own stream, ordered after the work enqueued on `stream` so far, so
  // that `stream` can run other work beside it; joinInto(stream) orders `stream` after it again.
  // The work beside the group must not wait for anything the group delivers.
  Status issueBeside(const RailJob& job, cudaStream_t stream);
  Status joinInto(cudaStream_t stream);
  // After a failure elsewhere: abort the rail communicator (its kernels may wait for a rank that
  // will never answer) and stop the watchdog. Idempotent.
  void abort();

 private:
  static constexpr int kWatchSlots = 16;
  struct Watch {
    CudaEvent started;
    CudaEvent finished;
    DeviceMemory<uint64_t> epoch;
    bool busy = false;
    bool startSeen = false;
    std::chrono::steady_clock::time_point startedAt;
    const char* what = "";
    int phase = 0;
    int firstPeer = -1;  // global rank of the job's first rail peer
  };

  RailExchange() = default;
  void watch();
  void reportTimeout(const Watch& slot);
  void abortLocked();

  ncclComm_t rail_ = nullptr;
  int device_ = 0;
  DomainView view_;
  std::chrono::milliseconds timeout_{0};
  CudaStream stream_;
  CudaEvent fork_;  // issueBeside / joinInto (recorded and waited in call order by one thread)
  CudaEvent join_;
  std::array<Watch, kWatchSlots> slots_;
  int nextSlot_ = 0;

  std::mutex mutex_;  // slots, the rail communicator's calls and its abort
  std::condition_variable changed_;
  bool stopping_ = false;
  bool aborted_ = false;
  std::thread watchdog_;
};

}  // namespace nccl_moe
