// nccl-moe-perf's phase columns: the spans of ncclMoeCommGetPhaseTimes averaged over timed calls,
// and their one-line rendering. Pure host code (a CPU unit test checks it).
#pragma once

#include <array>
#include <string>

#include "nccl_moe.h"

namespace nccl_moe::perf {

class PhaseAverage {
 public:
  // One call's phases; a phase that did not run in it is not counted.
  void add(const ncclMoePhaseTimes_t& times);
  bool ran(int phase) const { return calls_[phase] > 0; }
  // Means over the calls the phase ran in (-1 if it never ran).
  double startUs(int phase) const { return ran(phase) ? start_[phase] / calls_[phase] : -1.0; }
  double endUs(int phase) const { return ran(phase) ? end_[phase] / calls_[phase] : -1.0; }

 private:
  std::array<double, ncclMoeNumPhases> start_{}, end_{};
  std::array<int, ncclMoeNumPhases> calls_{};
};

// "layout.publish 0.0-5.1 | dispatch.nvlink 0.0-30.2 | ...": start-end (µs from the call's start)
// of every phase that ran, in enum order; startUs/endUs(phase) give the numbers to print.
template <class Start, class End>
std::string describePhases(Start startUs, End endUs);

}  // namespace nccl_moe::perf

#include "tools/perf/phase_report_inl.h"
