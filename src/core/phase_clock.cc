#include "core/phase_clock.h"

namespace nccl_moe {

TimedOp opOfPhase(ncclMoePhase_t phase) {
  if (phase <= ncclMoePhaseLayoutScan) return TimedOp::kLayout;
  if (phase <= ncclMoePhaseDispatchForward) return TimedOp::kDispatch;
  return TimedOp::kCombine;
}

Status PhaseClock::enable(bool on) {
  if (on && !created_) {
    for (CudaEvent& event : callStart_)
      if (Status s = event.createTimed(); !s.isOk()) return s;
    for (PhaseEvents* events : {&begin_, &end_})
      for (CudaEvent& event : *events)
        if (Status s = event.createTimed(); !s.isOk()) return s;
    created_ = true;
  }
  on_ = on;
  if (!on) timing_.fill(false);
  return Status::ok();
}

Status PhaseClock::startCall(TimedOp op, cudaStream_t stream) {
  const size_t index = static_cast<size_t>(op);
  timing_[index] = on_ && !streamIsCapturing(stream);
  if (!timing_[index]) return Status::ok();
  for (int p = 0; p < ncclMoeNumPhases; ++p)
    if (opOfPhase(static_cast<ncclMoePhase_t>(p)) == op) recorded_[p] = false;
  return cudaStatus(cudaEventRecord(callStart_[index].get(), stream), "cudaEventRecord(call start)");
}

Status PhaseClock::mark(ncclMoePhase_t phase, PhaseEvents* events, cudaStream_t stream) {
  if (!timing_[static_cast<size_t>(opOfPhase(phase))]) return Status::ok();
  if (Status s = cudaStatus(cudaEventRecord((*events)[phase].get(), stream), "cudaEventRecord(phase)"); !s.isOk())
    return s;
  if (events == &end_) recorded_[phase] = true;
  return Status::ok();
}

Status PhaseClock::read(ncclMoePhaseTimes_t* times) const {
  for (int p = 0; p < ncclMoeNumPhases; ++p) {
    times->startUs[p] = -1.0f;
    times->endUs[p] = -1.0f;
    if (!recorded_[p]) continue;
    const cudaEvent_t start = callStart_[static_cast<size_t>(opOfPhase(static_cast<ncclMoePhase_t>(p)))].get();
    if (Status s = cudaStatus(cudaEventSynchronize(end_[p].get()), "cudaEventSynchronize(phase)"); !s.isOk()) return s;
    float beginMs = 0.0f, endMs = 0.0f;
    if (Status s = cudaStatus(cudaEventElapsedTime(&beginMs, start, begin_[p].get()), "cudaEventElapsedTime");
        !s.isOk())
      return s;
    if (Status s = cudaStatus(cudaEventElapsedTime(&endMs, start, end_[p].get()), "cudaEventElapsedTime"); !s.isOk())
      return s;
    times->startUs[p] = beginMs * 1000.0f;
    times->endUs[p] = endMs * 1000.0f;
  }
  return Status::ok();
}

}  // namespace nccl_moe
