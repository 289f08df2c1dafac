// Probes this machine into a Node: hwloc for the PCI tree, NUMA and NICs; CUDA for the GPUs;
// NVML (dlopen) for NVLinks and multi-node NVLink fabrics; sysfs for NIC rates and PCIe links.
// Every source is optional: without a GPU, a driver or a NIC the probe still succeeds and says
// what it could not see in `notes`.
#pragma once

#include <string>
#include <vector>

#include "topology/model.h"

namespace nccl_moe::topo {

struct ProbeOptions {
  std::string hwlocXml;            // non-empty: this hwloc XML instead of the live machine
  std::string hwlocSource = "hwloc XML";
  bool useCuda = true;             // the sources below describe the live machine only
  bool useNvml = true;
  bool useSysfs = true;
  std::string sysRoot = "/sys";
};

struct ProbeResult {
  Node node;
  std::vector<std::string> notes;  // plain statements: "no GPU: ...", "no RDMA NIC: ..."
};

ProbeResult probeLocalNode(const ProbeOptions& options = {});

}  // namespace nccl_moe::topo
