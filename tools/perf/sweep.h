// nccl-moe-perf's measured loop: one communicator for the run, then for every token count the
// routing, the layout, the timed dispatch and combine, their phases, the check against the CPU
// reference (-c 1), the copy roofline and the all-to-all-v baseline. Rank 0 prints the table and
// writes the JSON.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "nccl_moe_bootstrap.h"
#include "tools/common/output_file.h"
#include "tools/perf/options.h"

namespace nccl_moe::perf {

// The exit status: 0 done, 1 wrong elements found. Failed calls throw std::runtime_error.
int runSweep(const Options& o, const RankLayout& layout, tools::OutputFile& json);

// The end of a run in either mode, after its communicators of the library are gone: the NCCL
// communicator and the stream are destroyed (the other ranks take part), then the JSON document
// `text` is written (a failed write ends only this rank); the exit status: 1 when `wrong` elements
// were found, else 0.
int endRun(ncclComm_t nccl, cudaStream_t stream, tools::OutputFile& json, const std::string& text,
           std::optional<int64_t> wrong);

}  // namespace nccl_moe::perf
