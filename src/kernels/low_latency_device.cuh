// What the low-latency dispatch and combine kernels share: addressing inside the LL buffers, the
// waits on the peers' records (every wait has the communicator's timeout and records rank, peer,
// phase and counters, transport/device_sync.cuh), last-block detection, step timing, and the error
// record of a routing fault found on the device.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/low_latency_launch.h"
#include "kernels/row_ops.cuh"
#include "transport/device_sync.cuh"

namespace nccl_moe {

constexpr int kLowLatencyThreads = 512;
constexpr int kLowLatencyWarpsPerBlock = kLowLatencyThreads / kWarp;

// The first rank of this rank's NVLink domain (0 with one domain). The LL buffers are mapped across
// the domain only: v.buffers is indexed by the rank's place in it.
__device__ __forceinline__ int llDomainBase(const LowLatencyView& v) { return v.domain.domain * v.domain.localRanks; }

// Parity `parity` of `owner`'s LL buffer (`owner` a global rank of this domain).
__device__ __forceinline__ uint8_t* llParity(const LowLatencyView& v, int owner, int parity) {
  return v.buffers[owner - llDomainBase(v)] + static_cast<int64_t>(parity) * v.regions.perParity;
}

// Record `source` of parity `parity` in `owner`'s LL buffer (what `source` tells `owner`, written by
// `source` or, from another domain, by its relay here; the credit fields by `source` only).
__device__ __forceinline__ LowLatencyPeerRecord* llRecord(const LowLatencyView& v, int owner, int parity, int source) {
  return reinterpret_cast<LowLatencyPeerRecord*>(llParity(v, owner, parity) + v.regions.signals) + source;
}

// What `source`'s dispatch of parity `parity` brings `owner` per local expert: L int32 in owner's
// counts region (written by `source`, or from another domain by its relay here).
__device__ __forceinline__ int32_t* llSourceCounts(const LowLatencyView& v, int owner, int parity, int source) {
  return reinterpret_cast<int32_t*>(llParity(v, owner, parity) + v.regions.counts) +
         static_cast<int64_t>(source) * v.localExperts;
}

// Dispatch slot (source rank, token) of parity `parity` in `owner`'s buffer: int32 header, then the row.
__device__ __forceinline__ uint8_t* llDispatchSlot(const LowLatencyView& v, int owner, int parity, int source,
                                                   int token) {
  const int64_t slot = static_cast<int64_t>(source) * v.maxTokens + token;
  return llParity(v, owner, parity) + v.regions.dispatchRecv + slot * v.regions.slotBytes;
}

// Combine landing row (token, top-k slot) of parity `parity` in `owner`'s buffer.
__device__ __forceinline__ uint8_t* llCombineRow(const LowLatencyView& v, int owner, int parity, int token, int k) {
  const int64_t row = static_cast<int64_t>(token) * v.maxTopk + k;
  return llParity(v, owner, parity) + v.regions.combineRecv + row * v.regions.combineRowBytes;
}

// ---- Two hops (several domains) -----------------------------------------------------------------

// Slot of domain n in the network regions (which hold none for the own domain).
__device__ __forceinline__ int llOtherSlot(const LowLatencyView& v, int n) {
  return static_cast<int>(v.domain.otherDomainSlot(n));
}

// The rank of domain n with this rank's place in its domain: its rail peer there.
__device__ __forceinline__ int llRailPeer(const LowLatencyView& v, int n) {
  return n * v.domain.localRanks + v.domain.localRank;
}

// Relay row (source domain n, token, slot) of parity `parity` in `owner`'s buffer: the expert output
// of (railPeer(owner, n), token, k).
__device__ __forceinline__ uint8_t* llRelayRow(const LowLatencyView& v, int owner, int parity, int n, int token,
                                               int k) {
  const int64_t row = (static_cast<int64_t>(llOtherSlot(v, n)) * v.maxTokens + token) * v.maxTopk + k;
  return llParity(v, owner, parity) + v.regions.relayRows + row * v.regions.combineRowBytes;
}

// This rank's network region at `offset` (a parity's regions.net*), message for or from domain n of
// `perToken` bytes a token, in the operation's host-side parity v.netParity.
__device__ __forceinline__ uint8_t* llNetMessage(const LowLatencyView& v, int64_t offset, int n, int64_t perToken) {
  return llParity(v, v.rank, v.netParity) + offset + static_cast<int64_t>(llOtherSlot(v, n)) * v.maxTokens * perToken;
}

// The tail (private memory) of message `kind` for (receive = 0) or from (1) domain n.
__device__ __forceinline__ LowLatencyNetTail* llNetTail(const LowLatencyView& v, int kind, int receive, int n) {
  const int64_t index = lowLatencyNetTailIndex(kind, v.netParity, receive, n, v.domain.domains);
  return reinterpret_cast<LowLatencyNetTail*>(v.netTails + index * v.netTailBytes);
}

// The counts a dispatch tail carries after its 64 bytes ([D][L] int32).
__device__ __forceinline__ int32_t* llNetTailCounts(LowLatencyNetTail* tail) {
  return reinterpret_cast<int32_t*>(tail + 1);
}
__device__ __forceinline__ const int32_t* llNetTailCounts(const LowLatencyNetTail* tail) {
  return reinterpret_cast<const int32_t*>(tail + 1);
}

// Every rail peer's tail is this operation's (else it had failed before it wrote: recorded).
__device__ inline bool llRailPeersSent(const LowLatencyView& v, int kind, uint64_t seq, int phase) {
  for (int n = 0; n < v.domain.domains; ++n) {
    if (n == v.domain.domain) continue;
    const LowLatencyNetTail* tail = llNetTail(v, kind, 1, n);
    if (*reinterpret_cast<const volatile uint64_t*>(&tail->sequence) != seq) {
      if (threadIdx.x == 0) raiseRailPeerFailure(v.domain, llRailPeer(v, n), phase, -1);
      return false;
    }
  }
  return true;
}

__device__ __forceinline__ int llClampTokens(const LowLatencyView& v, int tokens) {
  return tokens < 0 ? 0 : tokens > v.maxTokens ? v.maxTokens : tokens;
}

__device__ __forceinline__ int llClampTopk(const LowLatencyView& v, int topk) {
  return topk < 1 ? 1 : topk > v.maxTopk ? v.maxTopk : topk;
}

// ---- Waits and signals --------------------------------------------------------------------------

// Spins until *word >= target; false (and the error recorded) after a timeout or another failure.
// `peer` is the global rank whose store is awaited; a record of another domain's source is written
// by its relay here, the rank of this domain with the same place, which the error names.
__device__ inline bool llSpinAtLeast(const LowLatencyView& v, const uint64_t* word, uint64_t target, int peer,
                                     int phase) {
  const uint64_t start = globalTimerNs();
  uint64_t seen = loadAcquireSys(word);
  for (uint32_t spins = 0; seen < target; ++spins) {
    if (timeToCheckErrors(spins)) {
      if (errorRaised(v.domain)) return false;
      if (globalTimerNs() - start > v.domain.timeoutNs) {
        raiseTimeout(v.domain, peer % v.domain.localRanks, phase, target, seen);  // it takes the place in the domain
        return false;
      }
    }
    seen = loadAcquireSys(word);
  }
  return true;
}

// Every record s in [first, first + count) of this rank's parity `parity` holds at least `target`
// in the word at `field`. Called by a whole block; false in every thread after a timeout or another
// failure.
__device__ inline bool llWaitRecords(const LowLatencyView& v, int parity, size_t field, uint64_t target, int phase,
                                     int first, int count) {
  __shared__ int failed;
  if (threadIdx.x == 0) failed = 0;
  __syncthreads();
  for (int peer = first + static_cast<int>(threadIdx.x); peer < first + count; peer += blockDim.x) {
    const auto* word = reinterpret_cast<const uint64_t*>(
        reinterpret_cast<const uint8_t*>(llRecord(v, v.rank, parity, peer)) + field);
    if (!llSpinAtLeast(v, word, target, peer, phase)) failed = 1;
  }
  __syncthreads();
  // Every thread, not only the one that saw the store, reads the peers' data from here on.
  __threadfence_system();
  const bool ok = failed == 0;
  __syncthreads();
  return ok;
}

// The records of this rank's domain peers (all ranks with one domain).
__device__ inline bool llWaitDomainRecords(const LowLatencyView& v, int parity, size_t field, uint64_t target,
                                           int phase) {
  return llWaitRecords(v, parity, field, target, phase, llDomainBase(v), v.domain.localRanks);
}

// Stores `value` into the word at `field` of record `source` in every domain peer's parity `parity`,
// after everything this rank wrote before is visible to them. Called by the threads of one block.
__device__ inline void llSignalPeersAs(const LowLatencyView& v, int parity, size_t field, uint64_t value, int source) {
  __syncthreads();  // whatever any thread of the block wrote before is announced too
  __threadfence_system();
  const int base = llDomainBase(v);
  for (int i = threadIdx.x; i < v.domain.localRanks; i += blockDim.x) {
    auto* word = reinterpret_cast<uint64_t*>(reinterpret_cast<uint8_t*>(llRecord(v, base + i, parity, source)) + field);
    storeReleaseSys(word, value);
  }
}

// The same for this rank's own record.
__device__ inline void llSignalPeers(const LowLatencyView& v, int parity, size_t field, uint64_t value) {
  llSignalPeersAs(v, parity, field, value, v.rank);
}

// True in every thread of the last block of the grid to get here (it sees all others' writes).
__device__ inline bool llLastBlock(uint32_t* done) {
  __shared__ bool last;
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence_system();
    last = atomicAdd(done, 1u) == gridDim.x - 1;
    if (last) *done = 0;
  }
  __syncthreads();
  if (last) __threadfence_system();
  return last;
}

// ---- Step timing (NCCL_MOE_LL_TRACE=1) ------------------------------------------------------------

// Stamps `step` of operation `op` when tracing is on, by one thread of the block that `stamps`.
__device__ __forceinline__ void llStamp(const LowLatencyView& v, int op, int step, bool stamps) {
  if (v.trace != nullptr && stamps && threadIdx.x == 0) v.trace->stampNs[op][step] = globalTimerNs();
}

// Block 0 stamps `step` once all its threads are past this point. The barrier is taken only when
// tracing (`v.trace` is the same for the whole grid): the untraced call pays nothing for the stamp.
__device__ __forceinline__ void llStampBlockDone(const LowLatencyView& v, int op, int step) {
  if (v.trace == nullptr) return;
  __syncthreads();
  llStamp(v, op, step, blockIdx.x == 0);
}

// A kernel's start: block 0 stamps it and clears the call's other stamps. Only block 0 and a
// half's last block stamp, and the last block comes after block 0 (llLastBlock), so no stamp of
// this call is cleared.
__device__ __forceinline__ void llStampStart(const LowLatencyView& v, int op) {
  if (v.trace == nullptr || blockIdx.x != 0 || threadIdx.x != 0) return;
  for (int s = 1; s < kLowLatencyTraceSteps; ++s) v.trace->stampNs[op][s] = 0;
  v.trace->stampNs[op][kTraceStart] = globalTimerNs();
}

// The end of a call that ran both halves in this kernel (the receive half's last block, after
// every other block): the offsets of the steps stamped in it join the sums.
__device__ __forceinline__ void llTraceCallDone(const LowLatencyView& v, int op, int halves) {
  if (v.trace == nullptr || threadIdx.x != 0 || halves != kLowLatencyBoth) return;
  LowLatencyTrace& trace = *v.trace;
  trace.stampNs[op][kTraceDone] = globalTimerNs();
  const uint64_t start = trace.stampNs[op][kTraceStart];
  for (int s = 1; s < kLowLatencyTraceSteps; ++s) {
    const uint64_t at = trace.stampNs[op][s];
    if (at < start) continue;  // not reached in this call
    trace.sumNs[op][s] += at - start;
    trace.hits[op][s] += 1;
  }
}

// A routing fault (or a K that differs) of rank `faulty`, found by this rank's dispatch receive:
// recorded as this rank's failure (ncclInvalidArgument on the host; core/comm.cc words it).
__device__ inline void llRaiseRoutingFault(const LowLatencyView& v, int faulty, uint64_t kind, int token, int slot,
                                           int64_t value, uint64_t expectedTopk) {
  if (atomicCAS(&v.domain.error->kind, kErrorNone, kErrorRoutingFault) != kErrorNone) return;
  ErrorRecord record{};
  record.kind = kErrorRoutingFault;
  record.rank = v.rank;
  record.peer = faulty;
  record.phase = kPhaseLowLatencyDispatchArrival;
  record.expected = kind;
  record.observed = expectedTopk;
  record.token = token;
  record.slot = slot;
  record.value = value;
  publishError(v.domain, record);
}

}  // namespace nccl_moe
