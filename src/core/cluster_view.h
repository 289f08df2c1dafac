// The cluster as every rank of a communicator sees it: each rank probes its node, the probes are
// all-gathered over NCCL and assembled into one model with a fingerprint (topology/assembly.h).
// The single-domain path does not depend on it; the multi-node scheduler will.
#pragma once

#include <nccl.h>

#include <memory>
#include <string>

#include "core/status.h"

namespace nccl_moe {

struct ClusterView {
  std::string fingerprint;
  std::string summary;  // one line: nodes, GPUs, NVLink domains
  int nodes = 0;
  int nvlinkDomains = 0;
};

// Collective. NCCL_MOE_TOPOLOGY=0 skips it (returns an empty view). A probe or assembly failure is
// logged as a warning and also returns an empty view: topology never breaks a job.
Status gatherClusterView(ncclComm_t comm, int rank, int ranks, ClusterView* view);

}  // namespace nccl_moe
