// nccl-moe-perf: dispatch and combine bandwidth, nccl-tests style. One process per rank, started
// by nccl-moe-run (e.g. `nccl-moe-run -np 8 --mps nccl-moe-perf -b 128 -e 4K`), mpirun, srun or
// torchrun (the rank bootstrap, nccl_moe_bootstrap.h, reads whichever; docs/launching.md). In the
// same run it measures the baselines: a device-to-device copy of the same bytes on one GPU (the
// roofline of a one-GPU virtual cluster) and the path users have today, NCCL all-to-all-v with a
// permutation kernel (per-rank layout); with -c 1 every rank checks its outputs against the CPU
// reference. Rank 0 prints the table and optionally writes JSON (docs/benchmark.md).
//   options.*      the flags and the token sweep
//   table.*        the columns, the bandwidths and the summary lines
//   json_report.*  --json FILE
//   sweep.*        the measured loop (GPU)
//   ll_*           --low-latency: the LL calls' sweep (GPU), its table and JSON, its check
#include <iostream>

#include "tools/common/output_file.h"
#include "tools/common/tool_main.h"
#include "tools/perf/ll_sweep.h"
#include "tools/perf/options.h"
#include "tools/perf/sweep.h"

namespace nccl_moe::perf {
namespace {

// The launcher's variables, read before any GPU or network work: a bad one is a usage error.
RankLayout readLayout() {
  try {
    return readRankLayout();
  } catch (const BootstrapError& e) {
    throw tools::UsageError(e.what());
  }
}

// Rank 0 writes the file; the other ranks check the path too, so that every rank stops at once.
tools::OutputFile openJson(const Options& o, const RankLayout& layout) {
  if (o.json.empty()) return {};
  if (layout.rank != 0) {
    tools::checkWritable("--json", o.json);
    return {};
  }
  return tools::OutputFile::create("--json", o.json);
}

}  // namespace
}  // namespace nccl_moe::perf

// Every flag, the rank layout and the JSON path are checked before the first CUDA call.
int main(int argc, char** argv) {
  using namespace nccl_moe;
  return tools::runToolMain(
      "nccl-moe-perf",
      [&] {
        perf::Options options;
        if (perf::parseOptions(argc, argv, &options, std::cout) == tools::ParseOutcome::kAnswered) return 0;
        perf::checkOptions(options);
        const RankLayout layout = perf::readLayout();
        perf::checkAgainstGroup(options, layout);
        tools::OutputFile json = perf::openJson(options, layout);
        if (options.lowLatency) return perf::runLowLatencySweep(options, layout, json);
        return perf::runSweep(options, layout, json);
      },
      "lower -e or --hidden, or pass -c 0 (the check holds the whole group's rows in host memory on every rank)");
}
