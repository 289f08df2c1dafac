// Facts only Linux sysfs tells: NIC link rates and link layers, the PCIe generation and width
// each device is built for, and this host's identity.
#pragma once

#include <string>

#include "topology/model.h"

namespace nccl_moe::topo {

// Reads under `sysRoot` (normally "/sys"; tests point it at a fake tree):
//   class/infiniband/<nic>/ports/<port>/{rate,link_layer}  verbs NICs ("400 Gb/sec (4X NDR)")
//   class/net/<nic>/speed                                  Ethernet interfaces (Mb/s, -1 unknown)
//   bus/pci/devices/<bus id>/max_link_{speed,width}        PCIe gen and lanes of GPUs and NICs
// Missing files leave the fields as they are.
void applySysfs(Node& node, const std::string& sysRoot);

struct HostIdentity {
  std::string hostname;
  std::string hostId;  // NCCL_HOSTID when set (as NCCL does), else "<hostname>/<boot id>"
};

HostIdentity readHostIdentity();

}  // namespace nccl_moe::topo
