// NVLink facts from NVML, opened with dlopen("libnvidia-ml.so.1") at run time so that nothing
// links against the driver: on a machine without it the report just says NVML is absent.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "topology/model.h"

namespace nccl_moe::topo {

struct GpuNvlinks {
  std::string busId;
  int activeLinks = 0;
  int switchLinks = 0;                 // links whose far end is an NVSwitch
  std::map<std::string, int> peerLinks;  // direct links to another GPU, by its bus id
  std::string fabricDomain;            // "<cluster uuid>/<clique>" of a multi-node NVLink
                                       // fabric when registration completed, else ""
};

struct NvmlReport {
  std::vector<GpuNvlinks> gpus;
  std::string note;  // why NVML gave nothing, when it did not
};

NvmlReport queryNvml(const std::vector<std::string>& gpuBusIds);

// Fills each GPU's link counts and per-link bandwidth, the NVLink matrix (switch links count as
// min of the two ends, as nvidia-smi shows "NV18" on NVSwitch systems, plus direct links), and
// the node's NVLink domain when all its GPUs report the same fabric.
void applyNvlinks(Node& node, const NvmlReport& report);

}  // namespace nccl_moe::topo
