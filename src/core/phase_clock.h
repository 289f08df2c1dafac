// Optional GPU timing of each collective's phases (ncclMoeCommSetPhaseTiming): CUDA events at the
// phase boundaries, on whichever stream runs the phase, read back as offsets from the call's start.
#pragma once

#include <cuda_runtime.h>

#include <array>

#include "misc/cuda_memory.h"
#include "misc/status.h"
#include "nccl_moe.h"

namespace nccl_moe {

enum class TimedOp { kLayout = 0, kDispatch, kCombine };

// The collective a phase belongs to.
TimedOp opOfPhase(ncclMoePhase_t phase);

class PhaseClock {
 public:
  // Off: every call below is a no-op. The events are created on the first enable.
  Status enable(bool on);
  bool everEnabled() const { return created_; }

  // A call of `op` starts on `stream`: its phases recorded from now on replace the previous
  // call's. Not timed while `stream` is being captured into a graph.
  Status startCall(TimedOp op, cudaStream_t stream);
  // Phase boundaries of the call in progress (no-ops when that call is not timed).
  Status begin(ncclMoePhase_t phase, cudaStream_t stream) { return mark(phase, &begin_, stream); }
  Status end(ncclMoePhase_t phase, cudaStream_t stream) { return mark(phase, &end_, stream); }

  // Waits for the events of the last timed calls.
  Status read(ncclMoePhaseTimes_t* times) const;

 private:
  using PhaseEvents = std::array<CudaEvent, ncclMoeNumPhases>;
  Status mark(ncclMoePhase_t phase, PhaseEvents* events, cudaStream_t stream);

  bool on_ = false;
  bool created_ = false;
  std::array<CudaEvent, 3> callStart_;
  std::array<bool, 3> timing_{};       // the op's call in progress is timed
  PhaseEvents begin_, end_;
  std::array<bool, ncclMoeNumPhases> recorded_{};  // both events of the phase belong to the last timed call
};

}  // namespace nccl_moe
