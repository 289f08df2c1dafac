// The cluster as every rank of a communicator sees it: each rank probes its node, the probes are
// all-gathered over NCCL and assembled into one model with a fingerprint (topology/assembly.h).
// The plan choice (plan/plan_choice.h) takes its domain size and peer access from it.
#pragma once

#include <nccl.h>

#include <memory>
#include <string>

#include "misc/status.h"

namespace nccl_moe {

struct ClusterView {
  std::string fingerprint;  // "" when no cluster was assembled (skipped or failed)
  std::string summary;  // one line: nodes, GPUs, NVLink domains, ranks per domain, peer access
  int nodes = 0;
  int nvlinkDomains = 0;
  // Ranks (= GPUs in use) per NVLink domain when every domain of the assembled cluster holds the
  // same number of ranks and a domain's ranks are consecutive; else 0. A node without NVLink is a
  // domain of its own in the model, so peerAccess says whether its GPUs can use it.
  int ranksPerDomain = 0;
  // The rank GPUs inside each node reach each other over NVLink or CUDA P2P (per the probes);
  // false for PCIe-only nodes without P2P. True when nothing was assembled (unknown).
  bool peerAccess = true;
  // Per GPU per direction, the slowest node: intra-domain link (NVLink, else PCIe) and network;
  // 0 when unknown. What plan::choosePlan's link times use.
  double nvlinkGBps = 0;
  double networkGBps = 0;
};

// Collective. NCCL_MOE_TOPOLOGY=0 skips it (returns an empty view). A probe or assembly failure is
// logged as a warning and also returns an empty view: topology never breaks a job.
Status gatherClusterView(ncclComm_t comm, int rank, int ranks, int timeoutMs, ClusterView* view);

}  // namespace nccl_moe
