// Host entry points of the low-latency (LL) kernels (docs/low_latency.md). One domain: one kernel
// per call, running the send half, the receive half or both. Several domains (two hops): the host
// puts the NCCL groups of the network between the kernels (core/low_latency.cc), so each half is
// its own launch, and the combine's receive half is two (the relay's node partials, then the sum).
// Each enqueues on `stream` and returns the launch's CUDA error; cross-rank failures (timeouts, a
// routing fault found on the device, a rail peer that had failed) land in the DomainView's error
// record.
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
  uint32_t relayBlocksDone;    // ... of the relay step of a receive half (two hops)
  uint32_t reserved;
};

// Where an LL call's time goes (NCCL_MOE_LL_TRACE=1): global-timer stamps of the steps of the
// current call, and each step's offset from the kernel's start summed over the calls that ran both
// halves in one kernel. Block 0 stamps the steps every block passes; the last block the ends of
// the halves. A combine passes only some steps.
enum LowLatencyTraceStep : int {
  kTraceStart,
  kTraceIdsChecked,  // dispatch: this rank's ids checked
  kTraceCredited,    // the peers' credits for this parity seen
  kTraceBlockCopied, // block 0's warp 0: its own rows written (dispatch: numbered, then copied)
  kTraceBlockSent,   // block 0: every warp's rows and slot headers written, before the grid's last block
  kTraceRowsSent,    // the send half's last block: every block's rows written
  kTraceRecordSent,  // ... and the arrival released at every peer
  kTraceArrived,     // every source's arrival seen
  kTraceJudged,      // dispatch: the records judged
  kTraceReceived,    // the receive half's last block: every row placed (or reduced)
  kTraceDone,        // ... and the credits released
  kLowLatencyTraceSteps
};
enum LowLatencyTraceOp : int { kTraceDispatch, kTraceCombine, kLowLatencyTraceOps };
struct LowLatencyTrace {
  uint64_t stampNs[kLowLatencyTraceOps][kLowLatencyTraceSteps];
  uint64_t sumNs[kLowLatencyTraceOps][kLowLatencyTraceSteps];
  uint64_t hits[kLowLatencyTraceOps][kLowLatencyTraceSteps];
};

// What an LL kernel sees (passed by value).
struct LowLatencyView {
  DomainView domain;                  // rank, place in the domain, domains, error records, timeout
                                      // (its HT buffers are not used)
  uint8_t* const* buffers = nullptr;  // [D] device pointers to the domain's LL buffers
  LowLatencyRegions regions;
  LowLatencyCounters* counters = nullptr;
  // Private scratch (not peer-visible):
  int32_t* stashKept = nullptr;     // [2][N][maxTopk]: a combine's own kept slots (the domain of their
                                    // expert + 1) and masked ones (-1), from its send half (by parity)
                                    // to its receive half
  float* stashWeights = nullptr;    // [2][N][maxTopk]: their weights (1 for the unweighted combine)
  // Two hops: the network messages' tails (transport/low_latency_protocol.h, lowLatencyNetTailIndex),
  // and the host-side parity of the call's network regions (set per launch).
  uint8_t* netTails = nullptr;
  int64_t netTailBytes = 0;
  LowLatencyTrace* trace = nullptr;  // NCCL_MOE_LL_TRACE=1 only
  int netParity = 0;
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
// Two hops, the first step of a combine's receive half: the node partials of the tokens this rank
// relays (after the weights' network group), into the network combine send region.
cudaError_t launchLowLatencyCombineRelay(const LowLatencyView& view, const ncclMoeLowLatencyCombineArgs_t& args,
                                         int maxBlocks, cudaStream_t stream);

}  // namespace nccl_moe
