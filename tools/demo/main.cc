// nccl-moe-demo: one MoE layer through the library. On GPUs every rank runs ncclMoeLayoutCreate,
// ncclMoeDispatch and ncclMoeCombine (one process alone is a group of one rank; nccl-moe-run,
// mpirun, srun or torchrun start more), checks its outputs against the CPU reference bit for bit
// and times the calls; without a GPU, or with --cpu, the CPU reference alone runs and says so.
//   options.*   the flags and their checks against the group
//   report.*    the inputs, the x * sum(p) check, the tables
//   gpu_run.cc  the library on GPUs;  cpu_run.cc  the reference alone
#include <iostream>

#include "nccl_moe_bootstrap.h"
#include "tools/common/tool_main.h"
#include "tools/demo/options.h"
#include "tools/demo/runs.h"

namespace {

// The launcher's variables, read before any GPU work: a bad one is a usage error.
nccl_moe::RankLayout readLayout() {
  try {
    return nccl_moe::readRankLayout();
  } catch (const nccl_moe::BootstrapError& e) {
    throw nccl_moe::tools::UsageError(e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace nccl_moe;
  return tools::runToolMain(
      "nccl-moe-demo",
      [&] {
        demo::DemoOptions options;
        if (demo::parseOptions(argc, argv, &options, std::cout) == tools::ParseOutcome::kAnswered) return 0;
        const std::string noGpu = options.cpu ? "" : demo::whyNoGpu();
        if (options.cpu || !noGpu.empty()) {
          demo::checkOptions(options, options.ranks, false);
          demo::checkHostMemory(options, options.ranks);
          return demo::runOnCpu(options, options.cpu ? "--cpu: the CPU reference alone runs; the library's GPU path "
                                                       "is not exercised"
                                                     : noGpu);
        }
        const RankLayout layout = readLayout();
        demo::checkOptions(options, layout.size, true);
        demo::checkHostMemory(options, layout.size);
        return demo::runOnGpus(options, layout);
      },
      "lower --ranks, --tokens, --topk or --hidden");
}
