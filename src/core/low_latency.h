// The low-latency (LL) mode of a communicator on the host (docs/low_latency.md): what creation
// reserves for it (the LL buffers of both parities, mapped across the NVLink domain, and private
// device counters and scratch), and the calls, which check their arguments and enqueue one LL
// kernel each (kernels/low_latency_launch.h). One NVLink domain only, for now.
#pragma once

#include <cstddef>
#include <memory>

#include "core/config.h"
#include "core/low_latency_checks.h"
#include "kernels/low_latency_launch.h"
#include "misc/cuda_memory.h"
#include "misc/status.h"
#include "plan/low_latency_shape.h"
#include "transport/peer_buffer.h"

struct ncclMoeComm;

namespace nccl_moe {

// The LL shape of a configuration in a group of `ranks` ranks, one NVLink domain.
LowLatencyShape lowLatencyShapeOf(const CommConfig& config, int ranks);

// The private device memory of the LL mode (not peer-visible), in the order it is carved.
struct LowLatencyScratch {
  size_t counters = 0;      // LowLatencyCounters
  size_t positions = 0;     // [R][N][maxTopk] int32
  size_t sourceCounts = 0;  // [R][L] int32
  size_t stashKept = 0;     // [2][N][maxTopk] int32
  size_t stashWeights = 0;  // [2][N][maxTopk] float
  size_t total = 0;         // the above, each rounded up to 256 bytes
};
LowLatencyScratch lowLatencyScratchOf(const LowLatencyShape& shape);

class LowLatencyState {
 public:
  // Collective over the communicator's control communicator (the LL buffers are mapped across the
  // domain). Only with the LL mode on and one NVLink domain; needs comm.view set up.
  static Status create(const ncclMoeComm& comm, std::unique_ptr<LowLatencyState>* out);

  const LowLatencyView& view() const { return view_; }
  size_t bufferBytes() const { return buffer_->bytes(); }
  size_t scratchBytes() const { return scratchBytes_; }

  OutstandingHalves<ncclMoeLowLatencyDispatchArgs_t> dispatches{"dispatch"};
  OutstandingHalves<ncclMoeLowLatencyCombineArgs_t> combines{"combine"};

 private:
  LowLatencyState() = default;

  std::unique_ptr<PeerBuffer> buffer_;
  DeviceMemory<uint8_t> scratch_;
  size_t scratchBytes_ = 0;
  LowLatencyView view_;
};

// The LL calls: `args` is NULL for a receive half (it completes the oldest send half with that
// one's arguments). Everything is checked before anything is enqueued; `call` names the API
// function in messages.
Status runLowLatencyDispatch(ncclMoeComm* comm, const ncclMoeLowLatencyDispatchArgs_t* args, LowLatencyHalves halves,
                             const char* call, cudaStream_t stream);
Status runLowLatencyCombine(ncclMoeComm* comm, const ncclMoeLowLatencyCombineArgs_t* args, LowLatencyHalves halves,
                            const char* call, cudaStream_t stream);

}  // namespace nccl_moe
