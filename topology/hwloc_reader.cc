#include "topology/hwloc_reader.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "topology/hwloc_handle.h"

namespace nccl_moe::topo {

namespace {

constexpr unsigned kNvidiaVendor = 0x10de;
constexpr unsigned kAmazonVendor = 0x1d0f;  // EFA
constexpr unsigned kClassInfiniband = 0x0207;

std::string bitmapList(hwloc_const_bitmap_t set) {
  char* text = nullptr;
  if (set == nullptr || hwloc_bitmap_list_asprintf(&text, set) < 0) return "";
  std::unique_ptr<char, decltype(&std::free)> owned(text, &std::free);
  return owned.get();
}

std::string info(hwloc_obj_t object, const char* name) {
  const char* value = object != nullptr ? hwloc_obj_get_info_by_name(object, name) : nullptr;
  return value != nullptr ? value : "";
}

std::string busIdOf(hwloc_obj_t pci) {
  const auto& attr = pci->attr->pcidev;
  char text[32];
  std::snprintf(text, sizeof(text), "%04x:%02x:%02x.%x", static_cast<unsigned>(attr.domain),
                static_cast<unsigned>(attr.bus), static_cast<unsigned>(attr.dev),
                static_cast<unsigned>(attr.func));
  return text;
}

// "0c42:a103:0067:89ab" (sysfs/hwloc) -> "0x0c42a103006789ab" (NCCL).
std::string guidText(const std::string& nodeGuid) {
  if (nodeGuid.empty()) return "";
  std::string hex;
  for (char c : nodeGuid) {
    if (c != ':') hex += c;
  }
  return "0x" + hex;
}

// Natural order: mlx5_2 before mlx5_10.
bool naturalLess(const std::string& a, const std::string& b) {
  auto split = [](const std::string& s) {
    size_t digits = s.find_last_not_of("0123456789") + 1;
    long number = digits < s.size() ? std::strtol(s.c_str() + digits, nullptr, 10) : -1;
    return std::make_pair(s.substr(0, digits), number);
  };
  return split(a) < split(b);
}

struct Locality {
  int numa = -1;
  std::string cpus;
  hwloc_obj_t ancestor = nullptr;
};

Locality localityOf(hwloc_topology_t topology, hwloc_obj_t pci) {
  Locality locality;
  locality.ancestor = hwloc_get_non_io_ancestor_obj(topology, pci);
  if (locality.ancestor == nullptr) return locality;
  locality.cpus = bitmapList(locality.ancestor->cpuset);
  if (locality.ancestor->nodeset != nullptr && hwloc_bitmap_weight(locality.ancestor->nodeset) == 1) {
    locality.numa = hwloc_bitmap_first(locality.ancestor->nodeset);
  }
  return locality;
}

std::vector<hwloc_obj_t> bridgesAbove(hwloc_obj_t object) {
  std::vector<hwloc_obj_t> bridges;
  for (hwloc_obj_t parent = object->parent; parent != nullptr && parent->type == HWLOC_OBJ_BRIDGE;
       parent = parent->parent) {
    bridges.push_back(parent);
  }
  return bridges;
}

// nvidia-smi's classes from hwloc's PCI tree. A PCIe switch shows as an upstream-port bridge
// with one downstream-port bridge per slot, so "same switch" means each device is at most one
// bridge below the lowest common bridge.
PathClass pathBetween(hwloc_obj_t a, const Locality& localA, hwloc_obj_t b, const Locality& localB) {
  std::vector<hwloc_obj_t> aboveA = bridgesAbove(a);
  std::vector<hwloc_obj_t> aboveB = bridgesAbove(b);
  for (size_t i = 0; i < aboveA.size(); ++i) {
    auto match = std::find(aboveB.begin(), aboveB.end(), aboveA[i]);
    if (match == aboveB.end()) continue;
    size_t j = static_cast<size_t>(match - aboveB.begin());
    if (aboveA[i]->attr->bridge.upstream_type == HWLOC_OBJ_BRIDGE_HOST) return PathClass::kPhb;
    return i <= 1 && j <= 1 ? PathClass::kPix : PathClass::kPxb;
  }
  hwloc_obj_t ancestorA = localA.ancestor;
  hwloc_obj_t ancestorB = localB.ancestor;
  if (ancestorA != nullptr && ancestorB != nullptr && ancestorA->nodeset != nullptr &&
      ancestorB->nodeset != nullptr && hwloc_bitmap_intersects(ancestorA->nodeset, ancestorB->nodeset)) {
    return PathClass::kNode;
  }
  return PathClass::kSys;
}

NicKind kindOf(hwloc_obj_t pci, bool verbs) {
  const auto& attr = pci->attr->pcidev;
  if (attr.vendor_id == kAmazonVendor) return NicKind::kEfa;
  if (!verbs) return NicKind::kEthernet;
  return attr.class_id == kClassInfiniband ? NicKind::kInfiniband : NicKind::kRoce;
}

CpuInfo cpuInfoOf(hwloc_topology_t topology) {
  CpuInfo cpu;
  hwloc_obj_t root = hwloc_get_root_obj(topology);
  std::string arch = info(root, "Architecture");
  cpu.arch = arch == "aarch64" ? "arm64" : arch == "ppc64le" ? "ppc64" : arch;
  hwloc_obj_t package = hwloc_get_obj_by_type(topology, HWLOC_OBJ_PACKAGE, 0);
  cpu.vendor = info(package, "CPUVendor");
  cpu.model = info(package, "CPUModel");
  cpu.familyId = std::atoi(info(package, "CPUFamilyNumber").c_str());
  cpu.modelId = std::atoi(info(package, "CPUModelNumber").c_str());
  return cpu;
}

}  // namespace

Node nodeFromHwloc(const HwlocTopology& handle) {
  hwloc_topology_t topology = handle.get();
  Node node;
  node.hostname = info(hwloc_get_root_obj(topology), "HostName");
  node.cpu = cpuInfoOf(topology);
  for (hwloc_obj_t numa = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, nullptr);
       numa != nullptr; numa = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, numa)) {
    node.numa.push_back({static_cast<int>(numa->os_index), bitmapList(numa->cpuset),
                         static_cast<uint64_t>(numa->attr->numanode.local_memory)});
  }

  struct Device {
    hwloc_obj_t pci;
    Locality locality;
  };
  std::vector<Device> gpuDevices, nicDevices;
  for (hwloc_obj_t pci = hwloc_get_next_pcidev(topology, nullptr); pci != nullptr;
       pci = hwloc_get_next_pcidev(topology, pci)) {
    const auto& attr = pci->attr->pcidev;
    Locality locality = localityOf(topology, pci);
    if (attr.vendor_id == kNvidiaVendor && (attr.class_id >> 8) == 0x03) {
      Gpu gpu;
      gpu.busId = busIdOf(pci);
      gpu.numa = locality.numa;
      gpu.cpuAffinity = locality.cpus;
      gpu.pcie.gbytesPerSec = attr.linkspeed;
      node.gpus.push_back(gpu);
      gpuDevices.push_back({pci, locality});
      continue;
    }
    std::vector<std::string> verbs, netdevs;
    std::vector<std::string> guids;
    for (hwloc_obj_t child = pci->io_first_child; child != nullptr; child = child->next_sibling) {
      if (child->type != HWLOC_OBJ_OS_DEVICE || child->name == nullptr) continue;
      if (child->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS) {
        verbs.push_back(child->name);
        guids.push_back(guidText(info(child, "NodeGUID")));
      } else if (child->attr->osdev.type == HWLOC_OBJ_OSDEV_NETWORK) {
        netdevs.push_back(child->name);
      }
    }
    bool networkClass = (attr.class_id >> 8) == 0x02;
    if (!networkClass && verbs.empty()) continue;
    std::vector<std::string> names = verbs.empty() ? netdevs : verbs;
    for (size_t i = 0; i < names.size(); ++i) {
      Nic nic;
      nic.name = names[i];
      nic.kind = kindOf(pci, !verbs.empty());
      nic.busId = busIdOf(pci);
      nic.numa = locality.numa;
      nic.cpuAffinity = locality.cpus;
      nic.pcie.gbytesPerSec = attr.linkspeed;
      if (!verbs.empty()) {
        nic.guid = guids[i];
        if (!netdevs.empty()) nic.netdev = netdevs[std::min(i, netdevs.size() - 1)];
      }
      node.nics.push_back(nic);
      nicDevices.push_back({pci, locality});
    }
  }

  // GPUs by bus id (CUDA's PCI order until CUDA tells otherwise), NICs by name.
  std::vector<size_t> gpuOrder(node.gpus.size()), nicOrder(node.nics.size());
  for (size_t i = 0; i < gpuOrder.size(); ++i) gpuOrder[i] = i;
  for (size_t i = 0; i < nicOrder.size(); ++i) nicOrder[i] = i;
  std::stable_sort(gpuOrder.begin(), gpuOrder.end(),
                   [&](size_t a, size_t b) { return node.gpus[a].busId < node.gpus[b].busId; });
  std::stable_sort(nicOrder.begin(), nicOrder.end(),
                   [&](size_t a, size_t b) { return naturalLess(node.nics[a].name, node.nics[b].name); });
  std::vector<Gpu> gpus;
  std::vector<Device> sortedGpus;
  for (size_t i = 0; i < gpuOrder.size(); ++i) {
    gpus.push_back(node.gpus[gpuOrder[i]]);
    gpus.back().index = static_cast<int>(i);
    sortedGpus.push_back(gpuDevices[gpuOrder[i]]);
  }
  std::vector<Nic> nics;
  std::vector<Device> sortedNics;
  for (size_t i : nicOrder) {
    nics.push_back(node.nics[i]);
    sortedNics.push_back(nicDevices[i]);
  }
  node.gpus = std::move(gpus);
  node.nics = std::move(nics);

  const size_t gpuCount = node.gpus.size();
  node.gpuPaths.assign(gpuCount, std::vector<PathClass>(gpuCount, PathClass::kSys));
  node.gpuNicPaths.assign(gpuCount, std::vector<PathClass>(node.nics.size(), PathClass::kSys));
  for (size_t a = 0; a < gpuCount; ++a) {
    const Device& gpuA = sortedGpus[a];
    for (size_t b = 0; b < gpuCount; ++b) {
      const Device& gpuB = sortedGpus[b];
      node.gpuPaths[a][b] = a == b ? PathClass::kPix
                                   : pathBetween(gpuA.pci, gpuA.locality, gpuB.pci, gpuB.locality);
    }
    for (size_t n = 0; n < node.nics.size(); ++n) {
      const Device& nic = sortedNics[n];
      node.gpuNicPaths[a][n] = pathBetween(gpuA.pci, gpuA.locality, nic.pci, nic.locality);
    }
  }
  completeDerived(node);
  return node;
}

Node nodeFromHwlocXml(const std::string& xml, const std::string& source) {
  return nodeFromHwloc(HwlocTopology::fromXmlText(xml, source));
}

}  // namespace nccl_moe::topo
