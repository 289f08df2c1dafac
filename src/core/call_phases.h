// What the call pipelines (core/handle.cc: one domain; core/two_hop.cc: two hops) share: the SM
// budget of a launch, a phase's timing events around what it enqueues, the host copy of a
// handle's counts.
#pragma once

#include <cstdint>

#include "core/comm.h"
#include "kernels/launch.h"

namespace nccl_moe {

inline LaunchBudget budgetOf(int sms) { return LaunchBudget{sms}; }

// `enqueue` (returning Status) between the begin and end events of `phase` on `stream`.
template <class Enqueue>
Status inPhase(PhaseClock& clock, ncclMoePhase_t phase, cudaStream_t stream, Enqueue enqueue) {
  if (Status s = clock.begin(phase, stream); !s.isOk()) return s;
  if (Status s = enqueue(); !s.isOk()) return s;
  return clock.end(phase, stream);
}

// The pinned host copy of a handle's counts (filled by its layout): HandleCounts, tokensPerExpert
// [L], then (two-hop) the network rows [2][domains] (HandleDevice::netRows).
const HandleCounts& hostCountsOf(const ncclMoeHandle& handle);
int32_t* hostNetRows(const ncclMoeHandle& handle);

}  // namespace nccl_moe
