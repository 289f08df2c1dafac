// The complete environment of each rank: the launcher's own, plus what the job needs.
//
// Three kinds of variables:
//  - identity (NCCL_MOE_RANK, NCCL_MOE_NRANKS, NCCL_MOE_LOCAL_RANK, NCCL_MOE_DOMAIN_SIZE,
//    NCCL_MOE_UNIQUE_ID, NCCL_MOE_DEVICE, RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE): the
//    rank bootstrap (nccl_moe_bootstrap.h) reads them first; always set, since an
//    inherited value (from an outer launcher) is wrong for every rank of this job; replacing
//    one is reported as a warning.
//  - placement (CUDA_VISIBLE_DEVICES, NCCL_HOSTID, MASTER_ADDR, MASTER_PORT, CUDA_MPS_*): kept
//    when the user set them, unless --override-env (see rank_placement.h for the GPU list).
//  - NCCL_NVLS_ENABLE=0 unless set: NVLink multicast can take a shared host's GPUs out of service.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "environment_block.h"
#include "launch_options.h"
#include "rank_placement.h"

namespace nccl_moe::launcher {

struct JobFacts {
  std::string uniqueIdHex;                         // the job's ncclUniqueId
  int masterPort = 0;                              // a free TCP port for torch.distributed
  std::map<std::string, std::string> mpsVariables;  // CUDA_MPS_* of the job's MPS daemon
};

struct RankEnvironments {
  std::vector<EnvironmentBlock> perRank;
  std::vector<std::string> warnings;
};

RankEnvironments buildRankEnvironments(const JobPlacement& job, const LaunchOptions& options,
                                       const EnvironmentBlock& inherited, const JobFacts& facts);

}  // namespace nccl_moe::launcher
