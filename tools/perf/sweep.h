// nccl-moe-perf's measured loop: one communicator for the run, then for every token count the
// routing, the layout, the timed dispatch and combine, their phases, the check against the CPU
// reference (-c 1), the copy roofline and the all-to-all-v baseline. Rank 0 prints the table and
// writes the JSON.
#pragma once

#include "nccl_moe_bootstrap.h"
#include "tools/common/output_file.h"
#include "tools/perf/options.h"

namespace nccl_moe::perf {

// The exit status: 0 done, 1 wrong elements found. Failed calls throw std::runtime_error.
int runSweep(const Options& o, const RankLayout& layout, tools::OutputFile& json);

}  // namespace nccl_moe::perf
