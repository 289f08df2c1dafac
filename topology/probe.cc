#include "topology/probe.h"

#include <algorithm>

#include "topology/cuda_probe.h"
#include "topology/hwloc_handle.h"
#include "topology/hwloc_reader.h"
#include "topology/nvml_probe.h"
#include "topology/sysfs_probe.h"

namespace nccl_moe::topo {

namespace {

std::string nicSummary(const Node& node) {
  std::string names;
  for (const auto& nic : node.nics) names += (names.empty() ? "" : ", ") + nic.name;
  return names;
}

}  // namespace

ProbeResult probeLocalNode(const ProbeOptions& options) {
  ProbeResult result;
  bool live = options.hwlocXml.empty();
  result.node = live ? nodeFromHwloc(HwlocTopology::fromSystem())
                     : nodeFromHwlocXml(options.hwlocXml, options.hwlocSource);
  Node& node = result.node;
  if (live) {
    HostIdentity identity = readHostIdentity();
    node.hostname = identity.hostname;
    node.hostId = identity.hostId;
  }
  if (live && options.useCuda) {
    CudaReport cuda = queryCudaDevices();
    if (!cuda.note.empty()) result.notes.push_back(cuda.note);
    if (cuda.devices.empty() && !node.gpus.empty()) {
      result.notes.push_back("hwloc sees " + std::to_string(node.gpus.size()) +
                             " NVIDIA GPU(s) on PCI that CUDA cannot use; listed in bus order");
    }
    applyCudaDevices(node, cuda);
  }
  if (live && options.useNvml && !node.gpus.empty()) {
    std::vector<std::string> busIds;
    for (const auto& gpu : node.gpus) busIds.push_back(gpu.busId);
    NvmlReport nvml = queryNvml(busIds);
    if (!nvml.note.empty()) result.notes.push_back(nvml.note);
    applyNvlinks(node, nvml);
  }
  if (live && options.useSysfs) applySysfs(node, options.sysRoot);
  for (auto& gpu : node.gpus) gpu.rail = -1;  // from the final GPU order and NIC kinds
  completeDerived(node);

  if (node.gpus.empty()) result.notes.push_back("GPUs: none found");
  bool rdma = std::any_of(node.nics.begin(), node.nics.end(), [](const Nic& nic) { return isRdma(nic.kind); });
  if (node.nics.empty()) {
    result.notes.push_back("NICs: none found (no network device on PCI)");
  } else if (!rdma) {
    result.notes.push_back("RDMA NICs (InfiniBand, RoCE, EFA): none; Ethernet only: " + nicSummary(node));
  }
  return result;
}

}  // namespace nccl_moe::topo
