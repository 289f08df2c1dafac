// The human view of a node or cluster: a connection matrix in the spirit of `nvidia-smi topo -m`
// (GPU rows; GPU and NIC columns; NV# / PIX / PXB / PHB / NODE / SYS; CPU and NUMA affinity),
// plus the NIC rails, PCIe generation and width, and NVLink bandwidth.
#pragma once

#include <string>

#include "topology/model.h"

namespace nccl_moe::topo {

std::string renderNode(const Node& node, const std::string& title);

// A cluster header (counts, NVLink domains, per-GPU bandwidths, fingerprint), then one view per
// group of identical nodes.
std::string renderCluster(const Cluster& cluster);

// "450.0 GB/s", "79.6 GiB": the units the views use.
std::string formatGBps(double gbytesPerSec);
std::string formatBytes(uint64_t bytes);

}  // namespace nccl_moe::topo
