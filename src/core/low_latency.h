// The low-latency (LL) mode of a communicator on the host (docs/low_latency.md): what creation
// reserves for it (the LL buffers of both parities, mapped across the NVLink domain, and private
// device counters and scratch), and the calls, which check their arguments and enqueue the LL
// kernels (kernels/low_latency_launch.h). One domain: one kernel per call. Several domains (two
// hops, section 5): each half's kernels with the network groups between them, NCCL point-to-point
// on the rail exchange's own stream (transport/rail_exchange.h: its watchdog and graph watches),
// joined back into the caller's stream by events.
#pragma once

#include <array>
#include <cstddef>
#include <memory>

#include "core/config.h"
#include "core/low_latency_checks.h"
#include "core/low_latency_jobs.h"
#include "kernels/low_latency_launch.h"
#include "misc/cuda_memory.h"
#include "misc/status.h"
#include "plan/low_latency_shape.h"
#include "transport/peer_buffer.h"

struct ncclMoeComm;

namespace nccl_moe {

// The LL shape of a configuration in a group of `ranks` ranks, in NVLink domains of `ranksPerDomain`.
LowLatencyShape lowLatencyShapeOf(const CommConfig& config, int ranks, int ranksPerDomain);

// The private device memory of the LL mode (not peer-visible), in the order it is carved.
struct LowLatencyScratch {
  size_t counters = 0;      // LowLatencyCounters
  size_t stashKept = 0;     // [2][N][maxTopk] int32
  size_t stashWeights = 0;  // [2][N][maxTopk] float
  size_t netTails = 0;      // two hops: [kinds][2][2][M] tails of lowLatencyNetTailBytes; 0 with one domain
  size_t total = 0;         // the above, each rounded up to 256 bytes
};
LowLatencyScratch lowLatencyScratchOf(const LowLatencyShape& shape);

class LowLatencyState {
 public:
  // Collective over the communicator's control communicator (the LL buffers are mapped across the
  // domain). Only with the LL mode on; needs comm.view set up, and with several domains comm.rail
  // (every network group is rehearsed once here).
  static Status create(ncclMoeComm& comm, std::unique_ptr<LowLatencyState>* out);
  // With NCCL_MOE_LL_TRACE=1, logs where the calls' time went (core/low_latency_trace.h).
  ~LowLatencyState();

  const LowLatencyView& view() const { return view_; }
  // The high-throughput view changed (ncclMoeCommResize): the LL kernels take its error records and
  // timeout from it (its buffers are not theirs; the copy is kept whole so that nothing stale stays).
  void retargetDomain(const DomainView& domain) { view_.domain = domain; }
  size_t bufferBytes() const { return buffer_->bytes(); }
  size_t scratchBytes() const { return scratchBytes_; }
  bool twoHop() const { return rail_ != nullptr; }

  // Two hops: `halves` of one operation enqueued on `stream` (arguments checked). `outstanding` is
  // the number of its kind's send halves outstanding before this call.
  Status dispatchTwoHop(const ncclMoeLowLatencyDispatchArgs_t& args, LowLatencyHalves halves, int outstanding,
                        int maxBlocks, cudaStream_t stream);
  Status combineTwoHop(const ncclMoeLowLatencyCombineArgs_t& args, LowLatencyHalves halves, int outstanding,
                       int maxBlocks, cudaStream_t stream);

  OutstandingHalves<ncclMoeLowLatencyDispatchArgs_t> dispatches{"dispatch"};
  OutstandingHalves<ncclMoeLowLatencyCombineArgs_t> combines{"combine"};

 private:
  LowLatencyState() = default;
  // The view of a launch whose network regions have host-side parity `parity`.
  LowLatencyView viewWith(int parity) const;
  // Enqueues job [kind][parity] on the rail exchange's stream after the work on `stream` so far, and
  // records `landed` behind it.
  Status issueNetwork(int kind, int parity, cudaEvent_t landed, cudaStream_t stream);

  std::unique_ptr<PeerBuffer> buffer_;
  DeviceMemory<uint8_t> scratch_;
  size_t scratchBytes_ = 0;
  DeviceMemory<LowLatencyTrace> trace_;  // NCCL_MOE_LL_TRACE=1 only
  LowLatencyView view_;

  // Two hops only.
  RailExchange* rail_ = nullptr;  // the communicator's (it outlives this state)
  LowLatencyNetJobs jobs_;
  // Send halves enqueued so far per kind: the k-th uses the network regions of parity k mod 2.
  uint64_t dispatchSends_ = 0;
  uint64_t combineSends_ = 0;
  // A send half's network group has landed (per parity: two may be outstanding); the partials'.
  std::array<CudaEvent, LowLatencyLimits::kParities> dispatchLanded_;
  std::array<CudaEvent, LowLatencyLimits::kParities> weightsLanded_;
  CudaEvent partialsLanded_;
};

// The LL calls: `args` is NULL for a receive half (it completes the oldest send half with that
// one's arguments). Everything is checked before anything is enqueued; `call` names the API
// function in messages.
Status runLowLatencyDispatch(ncclMoeComm* comm, const ncclMoeLowLatencyDispatchArgs_t* args, LowLatencyHalves halves,
                             const char* call, cudaStream_t stream);
Status runLowLatencyCombine(ncclMoeComm* comm, const ncclMoeLowLatencyCombineArgs_t* args, LowLatencyHalves halves,
                            const char* call, cudaStream_t stream);

}  // namespace nccl_moe
