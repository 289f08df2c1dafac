// What the low-latency dispatch and combine kernels share: addressing inside the LL buffers, the
// waits on the peers' records (every wait has the communicator's timeout and records rank, peer,
// phase and counters, transport/device_sync.cuh), last-block detection, a grid barrier, and the
// error record of a routing fault found on the device.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/low_latency_launch.h"
#include "kernels/row_ops.cuh"
#include "transport/device_sync.cuh"

namespace nccl_moe {

constexpr int kLowLatencyThreads = 512;
constexpr int kLowLatencyWarpsPerBlock = kLowLatencyThreads / kWarp;

__device__ __forceinline__ uint8_t* llParity(const LowLatencyView& v, int owner, int parity) {
  return v.buffers[owner] + static_cast<int64_t>(parity) * v.regions.perParity;
}

// Record `peer` of parity `parity` in `owner`'s LL buffer (written by `peer` only).
__device__ __forceinline__ LowLatencyPeerRecord* llRecord(const LowLatencyView& v, int owner, int parity, int peer) {
  return reinterpret_cast<LowLatencyPeerRecord*>(llParity(v, owner, parity) + v.regions.signals) + peer;
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

// Spins until *word >= target; false (and the error recorded) after a timeout or another failure.
// `peer` is the rank whose store is awaited (one domain: local index = global rank).
__device__ inline bool llSpinAtLeast(const LowLatencyView& v, const uint64_t* word, uint64_t target, int peer,
                                     int phase) {
  const uint64_t start = globalTimerNs();
  uint64_t seen = loadAcquireSys(word);
  for (uint32_t spins = 0; seen < target; ++spins) {
    if ((spins & 1023u) == 0) {
      if (errorRaised(v.domain)) return false;
      if (globalTimerNs() - start > v.domain.timeoutNs) {
        raiseTimeout(v.domain, peer, phase, target, seen);
        return false;
      }
    }
    seen = loadAcquireSys(word);
  }
  return true;
}

// Every peer p has stored at least `target` into the word at `field` of record p of this rank's
// parity `parity`. Called by a whole block; false in every thread after a timeout or another failure.
__device__ inline bool llWaitRecords(const LowLatencyView& v, int parity, size_t field, uint64_t target, int phase) {
  __shared__ int failed;
  if (threadIdx.x == 0) failed = 0;
  __syncthreads();
  for (int peer = threadIdx.x; peer < v.ranks; peer += blockDim.x) {
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

// Stores `value` into the word at `field` of record `v.rank` of every peer's parity `parity`, after
// everything this rank wrote before is visible to them. Called by the threads of one block.
__device__ inline void llSignalPeers(const LowLatencyView& v, int parity, size_t field, uint64_t value) {
  __syncthreads();  // whatever any thread of the block wrote before is announced too
  __threadfence_system();
  for (int peer = threadIdx.x; peer < v.ranks; peer += blockDim.x) {
    auto* word = reinterpret_cast<uint64_t*>(reinterpret_cast<uint8_t*>(llRecord(v, peer, parity, v.rank)) + field);
    storeReleaseSys(word, value);
  }
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

// Every block of the grid has arrived (sense by generation, so it works whatever the counters held
// before: graph replays, grids of other sizes). Every block of an LL kernel is resident at once (the
// SM budget guarantees it). False after a timeout or another failure.
__device__ inline bool llGridSync(const LowLatencyView& v) {
  __shared__ int failed;
  __syncthreads();
  if (threadIdx.x == 0) {
    failed = 0;
    LowLatencyCounters* c = v.counters;
    volatile uint32_t* generation = &c->gridGeneration;
    const uint32_t seen = *generation;
    __threadfence();
    if (atomicAdd(&c->gridArrived, 1u) == gridDim.x - 1) {
      c->gridArrived = 0;
      __threadfence();
      atomicAdd(&c->gridGeneration, 1u);
    } else {
      const uint64_t start = globalTimerNs();
      for (uint32_t spins = 0; *generation == seen; ++spins) {
        if ((spins & 1023u) != 0) continue;
        if (errorRaised(v.domain)) {
          failed = 1;
          break;
        }
        if (globalTimerNs() - start > v.domain.timeoutNs) {
          raiseTimeout(v.domain, v.rank, kPhaseLowLatencyGridSync, gridDim.x, 0);
          failed = 1;
          break;
        }
      }
    }
  }
  __syncthreads();
  __threadfence();
  const bool ok = failed == 0;
  __syncthreads();
  return ok;
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
