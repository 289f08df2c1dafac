// The public entry points (nccl_moe_bootstrap.h) over the process environment.
#include "nccl_moe_bootstrap.h"

#include "tools/bootstrap/device.h"
#include "tools/bootstrap/id_distribution.h"
#include "tools/bootstrap/rank_layout.h"

namespace nccl_moe {

const char* launcherName(Launcher launcher) {
  switch (launcher) {
    case Launcher::kNcclMoeRun: return "nccl-moe-run";
    case Launcher::kTorchrun: return "torchrun";
    case Launcher::kOpenMpi: return "Open MPI";
    case Launcher::kPmi: return "MPICH/PMI";
    case Launcher::kSlurm: return "SLURM";
    case Launcher::kNone: break;
  }
  return "none (one process)";
}

RankLayout readRankLayout() { return bootstrap::readRankLayout(bootstrap::processEnvironment); }

RankBootstrap bootstrapRank(const BootstrapOptions& options) { return bootstrapRank(readRankLayout(), options); }

RankBootstrap bootstrapRank(const RankLayout& layout, const BootstrapOptions& options) {
  RankBootstrap result;
  result.layout = layout;
  if (options.selectDevice) result.device = bootstrap::selectDevice(layout, bootstrap::processEnvironment);
  bootstrap::DistributedId id = bootstrap::distributeUniqueId(layout, bootstrap::processEnvironment);
  result.uniqueId = id.id;
  result.idSource = std::move(id.source);
  return result;
}

}  // namespace nccl_moe
