#include "rank_environment.h"

namespace nccl_moe::launcher {
namespace {

constexpr const char* kMasterAddress = "127.0.0.1";

std::map<std::string, std::string> identityVariables(const JobPlacement& job,
                                                     const RankPlacement& placement,
                                                     const JobFacts& facts) {
  const std::string rank = std::to_string(placement.rank);
  const std::string ranks = std::to_string(job.ranks);
  const std::string localRank = std::to_string(placement.localRank);
  const std::string domainSize = std::to_string(job.domainSize);
  return {
      {"NCCL_MOE_RANK", rank},           {"NCCL_MOE_NRANKS", ranks},
      {"NCCL_MOE_LOCAL_RANK", localRank}, {"NCCL_MOE_DOMAIN_SIZE", domainSize},
      {"NCCL_MOE_UNIQUE_ID", facts.uniqueIdHex},
      // Each rank sees one GPU (its CUDA_VISIBLE_DEVICES), or all ranks share the first.
      {"NCCL_MOE_DEVICE", "0"},
      {"RANK", rank},                    {"WORLD_SIZE", ranks},
      {"LOCAL_RANK", localRank},         {"LOCAL_WORLD_SIZE", domainSize},
  };
}

std::map<std::string, std::string> placementVariables(const RankPlacement& placement,
                                                      const JobFacts& facts) {
  std::map<std::string, std::string> variables = facts.mpsVariables;
  variables["MASTER_ADDR"] = kMasterAddress;
  variables["MASTER_PORT"] = std::to_string(facts.masterPort);
  if (placement.hostId) variables["NCCL_HOSTID"] = *placement.hostId;
  return variables;
}

}  // namespace

RankEnvironments buildRankEnvironments(const JobPlacement& job, const LaunchOptions& options,
                                       const EnvironmentBlock& inherited, const JobFacts& facts) {
  RankEnvironments result;
  std::string replacedIdentity;
  for (const RankPlacement& placement : job.placements) {
    EnvironmentBlock environment = inherited;
    for (const auto& [name, value] : identityVariables(job, placement, facts)) {
      const std::optional<std::string> old = inherited.get(name);
      if (placement.rank == 0 && old && *old != value) {
        replacedIdentity += (replacedIdentity.empty() ? "" : ", ") + name;
      }
      environment.set(name, value);
    }
    for (const auto& [name, value] : placementVariables(placement, facts)) {
      if (options.overrideEnvironment || !inherited.contains(name)) environment.set(name, value);
    }
    // An explicit --hostid is the flag that allows replacing the user's NCCL_HOSTID.
    if (placement.hostId && options.hostIdMode != HostIdMode::kAuto) {
      environment.set("NCCL_HOSTID", *placement.hostId);
    }
    // The user's list already was the pool, so one entry of it narrows, never widens, it.
    if (placement.visibleDevice) environment.set("CUDA_VISIBLE_DEVICES", *placement.visibleDevice);
    if (!inherited.contains("NCCL_NVLS_ENABLE")) environment.set("NCCL_NVLS_ENABLE", "0");
    result.perRank.push_back(std::move(environment));
  }
  if (!replacedIdentity.empty()) {
    result.warnings.push_back("replacing inherited " + replacedIdentity +
                              ": every rank of this job gets its own");
  }
  return result;
}

}  // namespace nccl_moe::launcher
