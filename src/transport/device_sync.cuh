// Cross-rank signalling inside an NVLink domain, for every kernel (one domain and two-hop): release
// stores of epochs into peers' signal slots, acquire waits with a timeout that records who waited
// for whom (and give up on a failure already recorded, by a kernel or the network watchdog), and
// last-block detection inside a kernel.
#pragma once

#include <cstdint>
#include <cstdio>

#include "transport/domain_view.h"

namespace nccl_moe {

__device__ __forceinline__ uint64_t loadAcquireSys(const uint64_t* p) {
  uint64_t v;
  asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ void storeReleaseSys(uint64_t* p, uint64_t v) {
  asm volatile("st.release.sys.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

// The same at GPU scope, for flags between the blocks of one kernel (the layout's chunk flags).
__device__ __forceinline__ int32_t loadAcquireGpu(const int32_t* p) {
  int32_t v;
  asm volatile("ld.acquire.gpu.global.b32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ void storeReleaseGpu(int32_t* p, int32_t v) {
  asm volatile("st.release.gpu.global.b32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

__device__ __forceinline__ uint64_t globalTimerNs() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// The epoch of the call in flight. Each call's last kernel advances `current` once everything of
// the call is done, so a captured graph replays with fresh epochs and no extra launch is needed.
__device__ __forceinline__ uint64_t callEpoch(const DomainView& view) { return view.epochs->current + 1; }

__device__ __forceinline__ uint64_t* signalSlot(const DomainView& view, int owner, int phase, int peer) {
  auto* signals = reinterpret_cast<uint64_t*>(view.peerBuffers[owner] + view.layout.signals);
  return signals + static_cast<size_t>(phase) * view.localRanks + peer;
}

// A failure is already known: found by a kernel (the device record) or, with two hops, by the
// host's network watchdog (the host-mapped record, which only the host writes first). Waits give
// up on either, so the first detection ends every wait of this rank instead of each timing out on
// its own. With one domain the host record is not read: nothing but a kernel writes it there.
__device__ __forceinline__ bool errorRaised(const DomainView& view) {
  return *reinterpret_cast<volatile int32_t*>(&view.error->kind) != kErrorNone ||
         (view.hostRecordsFailures && view.errorHost != nullptr &&
          *reinterpret_cast<volatile int32_t*>(&view.errorHost->kind) != kErrorNone);
}

// errorRaised for a whole block, called by every thread of it (kernel starts): one thread reads
// the records and the others take its answer. The host-mapped record is a read over PCIe; every
// thread of a launch reading it cost 275 us per kernel at 2 ranks and 675 us at 8 on an H100
// (RESULTS.md, signal probe), against 5-14 us for the same kernels without it.
__device__ inline bool blockErrorRaised(const DomainView& view) {
  __shared__ int raised;
  if (threadIdx.x == 0) raised = errorRaised(view) ? 1 : 0;
  __syncthreads();
  const bool answer = raised != 0;
  __syncthreads();  // every thread has its answer before a later call rewrites it
  return answer;
}

// Spin loops check for failures (and their timeout) every kErrorCheckSpins spins, not at the first:
// a wait that ends quickly never reads the host-mapped record.
constexpr uint32_t kErrorCheckSpins = 1024;
__device__ __forceinline__ bool timeToCheckErrors(uint32_t spins) {
  return (spins & (kErrorCheckSpins - 1)) == kErrorCheckSpins - 1;
}

// Copies a record to the host-mapped mirror; `kind` last, so the host never sees half a record.
__device__ inline void publishError(const DomainView& view, const ErrorRecord& record) {
  volatile ErrorRecord* host = view.errorHost;
  if (host->kind != kErrorNone) return;  // the network watchdog reported first (host side only)
  host->rank = record.rank;
  host->peer = record.peer;
  host->phase = record.phase;
  host->expected = record.expected;
  host->observed = record.observed;
  host->token = record.token;
  host->slot = record.slot;
  host->value = record.value;
  __threadfence_system();
  host->kind = record.kind;
  __threadfence_system();
}

// Records the first failure of this rank (later ones keep the first record).
__device__ inline void raiseTimeout(const DomainView& view, int peer, int phase, uint64_t expected,
                                    uint64_t observed) {
  if (atomicCAS(&view.error->kind, kErrorNone, kErrorTimeout) == kErrorNone) {
    ErrorRecord record{};
    record.kind = kErrorTimeout;
    record.rank = view.rank;
    record.peer = view.domain * view.localRanks + peer;  // global rank
    record.phase = phase;
    record.expected = expected;
    record.observed = observed;
    publishError(view, record);
    printf("nccl-moe: rank %d timed out waiting for peer %d in phase %d: signal %llu, expected >= %llu\n",
           view.rank, record.peer, phase, (unsigned long long)observed, (unsigned long long)expected);
  }
}

// Records that rail peer `peer` (global rank) had failed when it sent this rank a network group.
__device__ inline void raiseRailPeerFailure(const DomainView& view, int peer, int phase, int chunk) {
  if (atomicCAS(&view.error->kind, kErrorNone, kErrorRailPeerFailed) == kErrorNone) {
    ErrorRecord record{};
    record.kind = kErrorRailPeerFailed;
    record.rank = view.rank;
    record.peer = peer;
    record.phase = phase;
    record.slot = chunk;
    publishError(view, record);
    printf("nccl-moe: rank %d: rail peer %d had failed when it sent its rows for phase %d\n", view.rank, peer, phase);
  }
}

// Every peer p of the domain (or only this rank, with `selfOnly`) has stored an epoch >= `target`
// into this rank's slot signals[phase][p]. Called by a whole block; returns false (in every
// thread) after a timeout or another failure.
__device__ inline bool waitForPeers(const DomainView& view, int phase, uint64_t target, bool selfOnly = false) {
  __shared__ int failed;
  if (threadIdx.x == 0) failed = 0;
  __syncthreads();
  const int first = selfOnly ? view.localRank : 0;
  const int end = selfOnly ? view.localRank + 1 : view.localRanks;
  for (int peer = first + threadIdx.x; peer < end; peer += blockDim.x) {
    const uint64_t* slot = signalSlot(view, view.localRank, phase, peer);
    const uint64_t start = globalTimerNs();
    uint64_t seen = loadAcquireSys(slot);
    for (uint32_t spins = 0; seen < target; ++spins) {
      if (timeToCheckErrors(spins)) {
        if (errorRaised(view)) {
          failed = 1;
          break;
        }
        if (globalTimerNs() - start > view.timeoutNs) {
          raiseTimeout(view, peer, phase, target, seen);
          failed = 1;
          break;
        }
      }
      seen = loadAcquireSys(slot);
    }
  }
  __syncthreads();
  // Every thread, not only the one that observed the signal, must see the peers' data from here.
  __threadfence_system();
  return failed == 0;
}

// Publishes `epoch` for `phase` into every domain peer's slot of this rank (called by one thread
// after the data it announces is globally visible).
__device__ inline void signalPeers(const DomainView& view, int phase, uint64_t epoch) {
  __threadfence_system();
  for (int peer = 0; peer < view.localRanks; ++peer)
    storeReleaseSys(signalSlot(view, peer, phase, view.localRank), epoch);
}

__device__ inline void signalSelf(const DomainView& view, int phase, uint64_t epoch) {
  __threadfence_system();
  storeReleaseSys(signalSlot(view, view.localRank, phase, view.localRank), epoch);
}

// True in the last block of the grid to get here (all others' writes are visible to it).
__device__ inline bool isLastBlock(DeviceEpochs* epochs) {
  __shared__ bool last;
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence_system();
    last = atomicAdd(&epochs->blocksDone, 1u) == gridDim.x - 1;
    if (last) epochs->blocksDone = 0;
  }
  __syncthreads();
  return last;
}

// The same for round `round` (0, 1, ...) of a kernel that counts several rounds on one counter
// (starting at zero): the last block of a round is the one that brings it to (round + 1) x grid.
// A block reaches round r + 1 only after a wait that the last block of round r released, so the
// rounds do not mix; the counter is reset by the kernel's end (closeCombine).
__device__ inline bool isLastBlockOfRound(uint32_t* counter, int round) {
  __shared__ bool last;
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence_system();
    last = atomicAdd(counter, 1u) == (static_cast<uint32_t>(round) + 1) * gridDim.x - 1;
  }
  __syncthreads();
  return last;
}

}  // namespace nccl_moe
