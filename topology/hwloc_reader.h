// Builds a node's PCI-level model (NUMA nodes, GPUs and NICs by PCI bus id, CPU affinity, PCIe
// classes between devices) from hwloc. GPUs are NVIDIA display/3D controllers, numbered by bus id
// until CUDA tells the real ordinals; NICs are the OpenFabrics (verbs) devices, or the network
// interfaces of PCI functions without one.
#pragma once

#include <string>

#include "topology/model.h"

namespace nccl_moe::topo {

class HwlocTopology;

Node nodeFromHwloc(const HwlocTopology& topology);

// The same from an hwloc XML export (lstopo --of xml), as tests and offline analysis use it.
Node nodeFromHwlocXml(const std::string& xml, const std::string& source);

}  // namespace nccl_moe::topo
