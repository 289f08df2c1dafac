// An owned hwloc topology, loaded from this machine or from an hwloc XML export (lstopo
// --of xml), with I/O devices (PCI, OS devices) kept. Internal to the topology library.
#pragma once

#include <hwloc.h>

#include <string>

namespace nccl_moe::topo {

class HwlocTopology {
 public:
  static HwlocTopology fromSystem();
  static HwlocTopology fromXmlText(const std::string& xml, const std::string& source);

  HwlocTopology(HwlocTopology&& other) noexcept;
  HwlocTopology& operator=(HwlocTopology&& other) noexcept;
  HwlocTopology(const HwlocTopology&) = delete;
  HwlocTopology& operator=(const HwlocTopology&) = delete;
  ~HwlocTopology();

  hwloc_topology_t get() const { return topology_; }

 private:
  explicit HwlocTopology(hwloc_topology_t topology) : topology_(topology) {}
  hwloc_topology_t topology_ = nullptr;
};

}  // namespace nccl_moe::topo
