// nccl-moe-perf --low-latency: for each token count of --tokens and each dispatch type of
// --ll-dispatch (one communicator each, lowLatencyMaxTokens = N), the LL dispatch and (on the first
// communicator) the weighted LL combine, eager and graph-launched, per-call p50/p99 from CUDA
// events, host time per call; in the same run the high-throughput path (layout + counts + dispatch,
// combine) on the same communicator and routing, and the copy floor of the same bytes; with -c 1
// every rank checks its outputs bit for bit (ll_check.h). Rank 0 prints the table and writes the
// JSON (docs/benchmark.md).
#pragma once

#include "nccl_moe_bootstrap.h"
#include "tools/common/output_file.h"
#include "tools/perf/options.h"

namespace nccl_moe::perf {

// The exit status: 0 done, 1 wrong elements found. Failed calls throw std::runtime_error.
int runLowLatencySweep(const Options& o, const RankLayout& layout, tools::OutputFile& json);

}  // namespace nccl_moe::perf
