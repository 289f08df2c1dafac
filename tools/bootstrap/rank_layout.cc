#include "tools/bootstrap/rank_layout.h"

#include <string>

#include "tools/bootstrap/slurm_lists.h"

namespace nccl_moe::bootstrap {
namespace {

// The four variables of a launcher; the rank variable being set is what selects it.
struct LauncherVariables {
  Launcher launcher;
  const char* rank;
  const char* size;
  const char* localRank;
  const char* localSize;
};

constexpr LauncherVariables kNcclMoeRun{Launcher::kNcclMoeRun, "NCCL_MOE_RANK", "NCCL_MOE_NRANKS",
                                        "NCCL_MOE_LOCAL_RANK", "NCCL_MOE_DOMAIN_SIZE"};
constexpr LauncherVariables kTorchrun{Launcher::kTorchrun, "RANK", "WORLD_SIZE", "LOCAL_RANK",
                                      "LOCAL_WORLD_SIZE"};
constexpr LauncherVariables kOpenMpi{Launcher::kOpenMpi, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                                     "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"};
constexpr LauncherVariables kPmi{Launcher::kPmi, "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"};

bool isSet(const EnvironmentLookup& lookup, const char* name) { return lookup(name) != nullptr; }

int require(const EnvironmentLookup& lookup, const char* name, int lowest, const LauncherVariables& from) {
  if (std::optional<int> value = readInt(lookup, name, lowest)) return *value;
  throw BootstrapError(std::string(name) + " is not set, but " + from.rank + " is (" +
                       launcherName(from.launcher) + " sets both)");
}

std::string shown(const std::string& name, int value) { return name + "=" + std::to_string(value); }

// The checks every launcher's values must pass; `names` say where each value came from.
struct LayoutNames {
  std::string rank, size, localRank, localSize;
};

void checkLayout(const RankLayout& layout, const LayoutNames& names) {
  if (layout.rank >= layout.size) {
    throw BootstrapError(shown(names.rank, layout.rank) + " is not below " + shown(names.size, layout.size));
  }
  if (layout.localSize > layout.size) {
    throw BootstrapError(shown(names.localSize, layout.localSize) + " is more than " +
                         shown(names.size, layout.size));
  }
  if (layout.localRank >= layout.localSize) {
    throw BootstrapError(shown(names.localRank, layout.localRank) + " is not below " +
                         shown(names.localSize, layout.localSize));
  }
}

RankLayout readLauncher(const EnvironmentLookup& lookup, const LauncherVariables& from) {
  RankLayout layout;
  layout.launcher = from.launcher;
  layout.rank = require(lookup, from.rank, 0, from);
  layout.size = require(lookup, from.size, 1, from);
  layout.localRank = require(lookup, from.localRank, 0, from);
  layout.localSize = require(lookup, from.localSize, 1, from);
  checkLayout(layout, {from.rank, from.size, from.localRank, from.localSize});
  return layout;
}

// nccl-moe-run's own contract on top: NVLink domains of consecutive ranks.
RankLayout readNcclMoeRun(const EnvironmentLookup& lookup) {
  const RankLayout layout = readLauncher(lookup, kNcclMoeRun);
  if (layout.size % layout.localSize != 0) {
    throw BootstrapError(shown(kNcclMoeRun.size, layout.size) + " is not a multiple of " +
                         shown(kNcclMoeRun.localSize, layout.localSize));
  }
  if (layout.localRank != layout.rank % layout.localSize) {
    throw BootstrapError(shown(kNcclMoeRun.localRank, layout.localRank) + " does not match " +
                         shown(kNcclMoeRun.rank, layout.rank) + " modulo " +
                         shown(kNcclMoeRun.localSize, layout.localSize));
  }
  return layout;
}

struct LocalSize {
  int value;
  std::string source;  // for messages: "SLURM_TASKS_PER_NODE[SLURM_NODEID=1]"
};

// Tasks on this node: the step's list (exact), else the job's list, else --ntasks-per-node.
LocalSize slurmLocalSize(const EnvironmentLookup& lookup, int size) {
  for (const char* name : {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"}) {
    const std::optional<std::string> list = readText(lookup, name);
    if (!list) continue;
    const std::vector<int> perNode = expandTasksPerNode(name, *list);
    // The step's list counts exactly its tasks (the job's may count more than one step runs).
    if (std::string(name) == "SLURM_STEP_TASKS_PER_NODE") {
      long long total = 0;
      for (int tasks : perNode) total += tasks;
      if (total != size) {
        throw BootstrapError(std::string(name) + "='" + *list + "' counts " + std::to_string(total) +
                             " tasks, but the step has " + std::to_string(size));
      }
    }
    const std::optional<int> node = readInt(lookup, "SLURM_NODEID", 0);
    if (!node) throw BootstrapError(std::string("SLURM_NODEID is not set, but ") + name + " is (srun sets both)");
    if (*node >= static_cast<int>(perNode.size())) {
      throw BootstrapError(shown("SLURM_NODEID", *node) + " is not below the " + std::to_string(perNode.size()) +
                           " nodes of " + name + "='" + *list + "'");
    }
    return {perNode[*node], std::string(name) + "[" + shown("SLURM_NODEID", *node) + "]"};
  }
  if (std::optional<int> perNode = readInt(lookup, "SLURM_NTASKS_PER_NODE", 1)) {
    return {*perNode, "SLURM_NTASKS_PER_NODE"};
  }
  throw BootstrapError(
      "SLURM_PROCID is set, but none of SLURM_STEP_TASKS_PER_NODE, SLURM_TASKS_PER_NODE, "
      "SLURM_NTASKS_PER_NODE is (start the ranks with srun)");
}

RankLayout readSlurm(const EnvironmentLookup& lookup) {
  // Inside a step the step's task count; SLURM_NTASKS may be the whole allocation's.
  const char* sizeName = isSet(lookup, "SLURM_STEP_NUM_TASKS") ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS";
  const LauncherVariables from{Launcher::kSlurm, "SLURM_PROCID", sizeName, "SLURM_LOCALID", nullptr};
  RankLayout layout;
  layout.launcher = Launcher::kSlurm;
  layout.rank = require(lookup, from.rank, 0, from);
  layout.size = require(lookup, from.size, 1, from);
  layout.localRank = require(lookup, from.localRank, 0, from);
  const LocalSize local = slurmLocalSize(lookup, layout.size);
  layout.localSize = local.value;
  checkLayout(layout, {from.rank, from.size, from.localRank, local.source});
  return layout;
}

// PMI without Hydra's local variables (srun --mpi=pmi2 sets PMI_RANK alone): SLURM's describe
// the same tasks, so they decide.
bool pmiWithoutLocalVariables(const EnvironmentLookup& lookup) {
  return !isSet(lookup, kPmi.localRank) && !isSet(lookup, kPmi.localSize) && isSet(lookup, "SLURM_PROCID");
}

}  // namespace

RankLayout readRankLayout(const EnvironmentLookup& lookup) {
  if (isSet(lookup, kNcclMoeRun.rank)) return readNcclMoeRun(lookup);
  if (isSet(lookup, kTorchrun.rank)) return readLauncher(lookup, kTorchrun);
  if (isSet(lookup, kOpenMpi.rank)) return readLauncher(lookup, kOpenMpi);
  if (isSet(lookup, kPmi.rank) && !pmiWithoutLocalVariables(lookup)) return readLauncher(lookup, kPmi);
  if (isSet(lookup, "SLURM_PROCID")) return readSlurm(lookup);
  return RankLayout{};
}

const std::vector<const char*>& bootstrapVariables() {
  static const std::vector<const char*> names = {
      "NCCL_MOE_RANK", "NCCL_MOE_NRANKS", "NCCL_MOE_LOCAL_RANK", "NCCL_MOE_DOMAIN_SIZE", "NCCL_MOE_UNIQUE_ID",
      "NCCL_MOE_DEVICE", "NCCL_MOE_BOOTSTRAP_ADDR", "NCCL_MOE_BOOTSTRAP_PORT", "NCCL_MOE_BOOTSTRAP_TIMEOUT",
      "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
      "TORCHELASTIC_RUN_ID", "TORCHELASTIC_USE_AGENT_STORE",
      "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
      "OMPI_MCA_ess_base_jobid", "PMIX_NAMESPACE",
      "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS",
      "SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", "SLURM_NODEID",
      "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE",
      "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_JOB_ID", "SLURM_STEP_ID"};
  return names;
}

}  // namespace nccl_moe::bootstrap
