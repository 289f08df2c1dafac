#include "rank_placement.h"

#include <algorithm>
#include <sstream>

namespace nccl_moe::launcher {
namespace {

std::string trimmed(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

std::vector<std::string> splitDeviceList(const std::string& list) {
  std::vector<std::string> entries;
  std::stringstream stream(list);
  std::string entry;
  while (std::getline(stream, entry, ',')) {
    entry = trimmed(entry);
    if (!entry.empty()) entries.push_back(entry);
  }
  return entries;
}

int chooseDomainSize(const LaunchOptions& options, const EnvironmentBlock& inherited) {
  if (options.domainSize) return *options.domainSize;
  const std::optional<std::string> fromEnvironment = inherited.get("NCCL_MOE_DOMAIN_SIZE");
  if (!fromEnvironment) return options.ranks;
  const std::string& text = *fromEnvironment;
  const bool digits = !text.empty() && text.size() < 9 &&
                      text.find_first_not_of("0123456789") == std::string::npos;
  const int size = digits ? std::stoi(text) : 0;
  if (size < 1 || options.ranks % size != 0) {
    throw UsageError("NCCL_MOE_DOMAIN_SIZE='" + text + "' from the environment is not a divisor of -np " +
                     std::to_string(options.ranks) + "; unset it or pass --domain-size");
  }
  return size;
}

// The user's CUDA_VISIBLE_DEVICES is the pool ranks are spread over (each rank sees one entry of
// it), unless --override-env; otherwise devices 0..G-1.
std::vector<std::string> chooseGpuPool(const LaunchOptions& options,
                                       const EnvironmentBlock& inherited, int detectedGpus) {
  const std::optional<std::string> userList =
      options.overrideEnvironment ? std::nullopt : inherited.get("CUDA_VISIBLE_DEVICES");
  const int count = options.gpus.value_or(std::max(detectedGpus, 0));
  std::vector<std::string> pool;
  if (userList) {
    const std::vector<std::string> listed = splitDeviceList(*userList);
    if (count > static_cast<int>(listed.size())) {
      throw UsageError("--gpus " + std::to_string(count) + " asks for more GPUs than " +
                       "CUDA_VISIBLE_DEVICES='" + *userList + "' lists (" +
                       std::to_string(listed.size()) + "); pass --override-env to ignore it");
    }
    pool.assign(listed.begin(), listed.begin() + count);
  } else {
    for (int gpu = 0; gpu < count; ++gpu) pool.push_back(std::to_string(gpu));
  }
  return pool;
}

}  // namespace

JobPlacement placeRanks(const LaunchOptions& options, const EnvironmentBlock& inherited,
                        int detectedGpus) {
  JobPlacement job;
  job.ranks = options.ranks;
  job.domainSize = chooseDomainSize(options, inherited);
  job.gpuPool = chooseGpuPool(options, inherited, detectedGpus);
  const int gpuCount = static_cast<int>(job.gpuPool.size());
  job.ranksShareGpu = job.ranks > gpuCount;

  HostIdMode hostIdMode = options.hostIdMode;
  if (hostIdMode == HostIdMode::kAuto) {
    const bool userHostId = inherited.contains("NCCL_HOSTID") && !options.overrideEnvironment;
    if (job.ranksShareGpu && userHostId) {
      job.warnings.push_back(
          "NCCL_HOSTID is set in the environment and kept, but ranks share a GPU and need "
          "distinct host ids; unset it or pass --override-env or --hostid rank");
    }
    hostIdMode = job.ranksShareGpu && !userHostId ? HostIdMode::kPerRank : HostIdMode::kNone;
  }
  if (hostIdMode == HostIdMode::kPerDomain && gpuCount > 0 && job.domainSize > gpuCount) {
    throw UsageError("--hostid domain would put ranks of one NVLink domain (" +
                     std::to_string(job.domainSize) + " ranks) on " + std::to_string(gpuCount) +
                     " GPU(s); NCCL refuses two ranks of one node on one GPU: use --hostid rank");
  }

  for (int rank = 0; rank < job.ranks; ++rank) {
    RankPlacement placement;
    placement.rank = rank;
    placement.domainIndex = rank / job.domainSize;
    placement.localRank = rank % job.domainSize;
    if (gpuCount > 0) placement.visibleDevice = job.gpuPool[rank % gpuCount];
    const std::string domainName = "nccl-moe-vnode" + std::to_string(placement.domainIndex);
    if (hostIdMode == HostIdMode::kPerRank) {
      placement.hostId = domainName + "-rank" + std::to_string(rank);
    } else if (hostIdMode == HostIdMode::kPerDomain) {
      placement.hostId = domainName;
    }
    job.placements.push_back(placement);
  }
  return job;
}

}  // namespace nccl_moe::launcher
