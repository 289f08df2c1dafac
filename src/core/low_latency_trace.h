// NCCL_MOE_LL_TRACE=1: the words of the LL kernels' step stamps (kernels/low_latency_launch.h,
// LowLatencyTrace), one line per operation, which each rank logs when its communicator goes.
#pragma once

#include <string>

#include "kernels/low_latency_launch.h"

namespace nccl_moe {

// "dispatch, 100 calls, us from the kernel's start: ids checked 1.2 | credited 2.0 | ...": the mean
// offset of each step over the calls it was reached in (a step reached in fewer calls says so);
// empty when no call ran both halves in one kernel.
std::string describeLowLatencyTrace(const LowLatencyTrace& trace, LowLatencyTraceOp op);

}  // namespace nccl_moe
