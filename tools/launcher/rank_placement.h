// Where each rank goes: its NVLink domain, its GPU and its NCCL host id.
//
// Why a host id per rank when ranks share a GPU: NCCL groups ranks into nodes by host id, and
// inside a node it connects ranks by P2P/SHM and refuses two ranks on one GPU ("duplicate GPU").
// With a distinct NCCL_HOSTID every process is a node of its own, so NCCL carries all traffic
// over its network (socket) transport, which works between processes on one GPU. NCCL then knows
// nothing of our virtual nodes; the library learns them from NCCL_MOE_DOMAIN_SIZE instead and
// maps peer memory inside a domain itself (CUDA IPC works on one GPU). A host id per domain is
// only possible when no two ranks of a domain share a GPU.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "environment_block.h"
#include "launch_options.h"

namespace nccl_moe::launcher {

struct RankPlacement {
  int rank = 0;
  int domainIndex = 0;
  int localRank = 0;                         // index inside the domain
  std::optional<std::string> visibleDevice;  // the CUDA_VISIBLE_DEVICES entry, if any
  std::optional<std::string> hostId;         // NCCL_HOSTID to set, if any
};

struct JobPlacement {
  int ranks = 0;
  int domainSize = 0;
  std::vector<std::string> gpuPool;  // CUDA_VISIBLE_DEVICES entries ranks are spread over
  bool ranksShareGpu = false;        // more ranks than GPUs (or no GPU known)
  std::vector<RankPlacement> placements;
  std::vector<std::string> warnings;
};

// `detectedGpus`: what cudaGetDeviceCount reported to the launcher (0 when it failed).
// Throws UsageError when the options cannot be met (e.g. more --gpus than CUDA_VISIBLE_DEVICES
// lists, or --hostid domain with ranks of one domain on one GPU).
JobPlacement placeRanks(const LaunchOptions& options, const EnvironmentBlock& inherited,
                        int detectedGpus);

}  // namespace nccl_moe::launcher
