#include "topology/hwloc_handle.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include "topology/error.h"

namespace nccl_moe::topo {

namespace {

// Owns the handle while it is being configured, so every failure path destroys it.
class PendingTopology {
 public:
  PendingTopology() {
    if (hwloc_topology_init(&topology_) != 0) fail("hwloc: cannot initialise a topology");
  }
  ~PendingTopology() {
    if (topology_ != nullptr) hwloc_topology_destroy(topology_);
  }
  PendingTopology(const PendingTopology&) = delete;
  PendingTopology& operator=(const PendingTopology&) = delete;

  hwloc_topology_t get() const { return topology_; }
  hwloc_topology_t release() { return std::exchange(topology_, nullptr); }

 private:
  hwloc_topology_t topology_ = nullptr;
};

void keepIoDevices(hwloc_topology_t topology) {
  // Bridges, GPUs and NICs are "important" I/O objects; this keeps the PCI tree above them.
  hwloc_topology_set_io_types_filter(topology, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  // The GPU vendor plugins (OpenCL, GL/NV-CONTROL; installed with libhwloc-plugins) would start
  // drivers and add OS devices the probe gets from CUDA and NVML itself; they also leak at exit.
  for (const char* unused : {"opencl", "gl"})
    hwloc_topology_set_components(topology, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, unused);
}

void load(hwloc_topology_t topology, const std::string& what) {
  if (hwloc_topology_load(topology) != 0) {
    fail(what, ": hwloc could not load the topology: ", std::strerror(errno));
  }
}

}  // namespace

HwlocTopology HwlocTopology::fromSystem() {
  PendingTopology pending;
  keepIoDevices(pending.get());
  load(pending.get(), "this machine");
  return HwlocTopology(pending.release());
}

HwlocTopology HwlocTopology::fromXmlText(const std::string& xml, const std::string& source) {
  PendingTopology pending;
  keepIoDevices(pending.get());
  // hwloc's XML parser wants the terminating NUL counted in the length.
  if (hwloc_topology_set_xmlbuffer(pending.get(), xml.c_str(), static_cast<int>(xml.size() + 1)) != 0) {
    fail(source, ": hwloc rejected the XML: ", std::strerror(errno));
  }
  load(pending.get(), source);
  return HwlocTopology(pending.release());
}

HwlocTopology::HwlocTopology(HwlocTopology&& other) noexcept
    : topology_(std::exchange(other.topology_, nullptr)) {}

HwlocTopology& HwlocTopology::operator=(HwlocTopology&& other) noexcept {
  if (this != &other) {
    if (topology_ != nullptr) hwloc_topology_destroy(topology_);
    topology_ = std::exchange(other.topology_, nullptr);
  }
  return *this;
}

HwlocTopology::~HwlocTopology() {
  if (topology_ != nullptr) hwloc_topology_destroy(topology_);
}

}  // namespace nccl_moe::topo
