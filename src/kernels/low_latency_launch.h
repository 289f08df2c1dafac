// Host entry points of the low-latency (LL) kernels, one NVLink domain (docs/low_latency.md): one
// kernel per call, running the send half, the receive half or both. Each enqueues on `stream` and
// returns the launch's CUDA error; cross-rank failures (timeouts, a routing fault found on the
// device) land in the DomainView's error record.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "nccl_moe.h"
#include "transport/domain_view.h"
#include "transport/low_latency_protocol.h"

namespace nccl_moe {

// Which halves of an LL operation one launch runs.
enum LowLatencyHalves : int {
  kLowLatencySend = 1,
  kLowLatencyReceive = 2,
  kLowLatencyBoth = kLowLatencySend | kLowLatencyReceive,
};

// Device counters of one communicator's LL mode. The sequence numbers of the operations live here
// (not in kernel arguments), so a captured graph replays with fresh ones; each half's last block
// advances its counter once the half is done.
struct LowLatencyCounters {
  uint64_t dispatchSent;
  uint64_t dispatchReceived;
  uint64_t combineSent;
  uint64_t combineReceived;
  uint32_t sendBlocksDone;     // last-block detection of a send half
  uint32_t receiveBlocksDone;  // ... of a receive half
  uint32_t gridArrived;        // the grid barrier inside a dispatch receive half
  uint32_t gridGeneration;
};

// What an LL kernel sees (passed by value).
struct LowLatencyView {
  DomainView domain;                  // rank, error records, timeout (its HT buffers are not used)
  uint8_t* const* buffers = nullptr;  // [R] device pointers to the domain's LL buffers
  LowLatencyRegions regions;
  LowLatencyCounters* counters = nullptr;
  // Private scratch (not peer-visible):
  int32_t* positions = nullptr;     // [R][N][maxTopk]: a received slot's row in its expert's segment,
                                    // counted inside its source rank (-1: not a local expert)
  int32_t* sourceCounts = nullptr;  // [R][L]: rows of source s for local expert l
  int32_t* stashKept = nullptr;     // [2][N][maxTopk]: a combine's own kept slots (1) and masked ones
                                    // (-1), from its send half (by parity) to its receive half
  float* stashWeights = nullptr;    // [2][N][maxTopk]: their weights (1 for the unweighted combine)
  int ranks = 0;
  int rank = 0;
  int experts = 0;
  int localExperts = 0;
  int hidden = 0;
  int maxTokens = 0;    // N
  int maxTopk = 0;
  int scaleBlocks = 0;  // B
  int fp8 = 0;
  int powerOfTwoScales = 0;
  int64_t segmentRows = 0;     // P = R x N
  int64_t scalePlaneRows = 0;  // P rounded up to 4
};

// maxBlocks: the SM budget of the operation. The arguments were checked by core/low_latency_checks.
cudaError_t launchLowLatencyDispatch(const LowLatencyView& view, const ncclMoeLowLatencyDispatchArgs_t& args,
                                     LowLatencyHalves halves, int maxBlocks, cudaStream_t stream);
cudaError_t launchLowLatencyCombine(const LowLatencyView& view, const ncclMoeLowLatencyCombineArgs_t& args,
                                    LowLatencyHalves halves, int maxBlocks, cudaStream_t stream);

}  // namespace nccl_moe
