#include "tools/bootstrap/store_settings.h"

#include <vector>

#include "tools/bootstrap/slurm_lists.h"

namespace nccl_moe::bootstrap {
namespace {

constexpr int kMaxPort = 65535;
constexpr int kMaxTimeoutSeconds = 7 * 24 * 3600;

std::string readHost(const RankLayout& layout, const EnvironmentLookup& lookup) {
  for (const char* name : {"NCCL_MOE_BOOTSTRAP_ADDR", "MASTER_ADDR"}) {
    if (std::optional<std::string> host = readText(lookup, name)) {
      if (host->empty()) throw BootstrapError(std::string(name) + " is set but empty");
      return *host;
    }
  }
  // srun starts rank 0 on the first node of the step (block distribution, the default).
  if (layout.launcher == Launcher::kSlurm) {
    for (const char* name : {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST"}) {
      if (std::optional<std::string> list = readText(lookup, name)) return firstHostOf(name, *list);
    }
  }
  if (layout.localSize == layout.size) return "127.0.0.1";  // every rank on this host
  throw BootstrapError("the " + std::to_string(layout.size) + " ranks span several hosts (" +
                       std::to_string(layout.localSize) + " on this one, " + launcherName(layout.launcher) +
                       ") and no variable names rank 0's: set MASTER_ADDR (or NCCL_MOE_BOOTSTRAP_ADDR) to rank 0's "
                       "host name or address");
}

int readPort(const EnvironmentLookup& lookup) {
  if (std::optional<int> port = readInt(lookup, "NCCL_MOE_BOOTSTRAP_PORT", 1, kMaxPort)) return *port;
  // torchrun's agent serves its own store on MASTER_PORT and says so: take the port after it.
  const std::optional<std::string> agentStore = readText(lookup, "TORCHELASTIC_USE_AGENT_STORE");
  const bool portTaken = agentStore && (*agentStore == "True" || *agentStore == "true" || *agentStore == "1");
  if (std::optional<int> port = readInt(lookup, "MASTER_PORT", 1, portTaken ? kMaxPort - 1 : kMaxPort)) {
    return *port + (portTaken ? 1 : 0);
  }
  return kDefaultStorePort;
}

// Variables whose values are the same on every rank of one launcher job and differ between jobs.
std::vector<const char*> jobVariables(Launcher launcher) {
  switch (launcher) {
    case Launcher::kTorchrun: return {"TORCHELASTIC_RUN_ID"};
    case Launcher::kOpenMpi: return {"PMIX_NAMESPACE", "OMPI_MCA_ess_base_jobid"};
    case Launcher::kPmi: return {"PMIX_NAMESPACE"};
    case Launcher::kSlurm: return {"SLURM_JOB_ID", "SLURM_STEP_ID"};
    case Launcher::kNcclMoeRun:
    case Launcher::kNone: break;
  }
  return {};
}

}  // namespace

StoreSettings readStoreSettings(const RankLayout& layout, const EnvironmentLookup& lookup) {
  StoreSettings settings;
  settings.host = readHost(layout, lookup);
  settings.port = readPort(lookup);
  for (const char* name : jobVariables(layout.launcher)) {
    if (std::optional<std::string> value = readText(lookup, name)) settings.jobName += std::string(name) + "=" + *value + ";";
  }
  return settings;
}

std::chrono::milliseconds readBootstrapTimeout(const EnvironmentLookup& lookup) {
  const int seconds =
      readInt(lookup, "NCCL_MOE_BOOTSTRAP_TIMEOUT", 1, kMaxTimeoutSeconds).value_or(kDefaultTimeoutSeconds);
  return std::chrono::seconds(seconds);
}

}  // namespace nccl_moe::bootstrap
