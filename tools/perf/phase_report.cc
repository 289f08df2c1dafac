#include "tools/perf/phase_report.h"

namespace nccl_moe::perf {

void PhaseAverage::add(const ncclMoePhaseTimes_t& times) {
  for (int p = 0; p < ncclMoeNumPhases; ++p) {
    if (times.startUs[p] < 0) continue;
    start_[p] += times.startUs[p];
    end_[p] += times.endUs[p];
    ++calls_[p];
  }
}

}  // namespace nccl_moe::perf
