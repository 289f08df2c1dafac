#include "topology/nccl_xml.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <map>
#include <numeric>
#include <set>

#include "topology/cpuset.h"
#include "topology/error.h"
#include "topology/hash.h"

namespace nccl_moe::topo {

namespace {

// PCI classes and the NVLink target marker NCCL uses.
constexpr const char* kClassBridge = "0x060400";
constexpr const char* kClassNvswitch = "0x068000";
constexpr const char* kClass3dController = "0x030200";
constexpr const char* kClassInfiniband = "0x020700";
constexpr const char* kClassEthernet = "0x020000";
constexpr const char* kNvswitchTarget = "fffffff:ffff:ff";  // "remote end not visible: a switch"
constexpr const char* kHostPrefix = "nccl-host-0x";

// Import ranges, those of the cluster JSON: NUMA ids, CPU family/model ids and ports up to
// 65536, and SM versions that a "major.minor" compute capability can spell. PCIe widths only
// have to fit an int: NCCL widens the links of bonded NICs beyond x32, and findProblems judges
// the widths the model keeps.
constexpr int kMaxId = 1 << 16;
constexpr int kMaxSm = 999;

const char* linkSpeedText(int gen) {
  switch (gen) {
    case 1: return "2.5 GT/s PCIe";
    case 2: return "5.0 GT/s PCIe";
    case 3: return "8.0 GT/s PCIe";
    case 4: return "16.0 GT/s PCIe";
    case 5: return "32.0 GT/s PCIe";
    case 6: return "64.0 GT/s PCIe";
    default: return "";
  }
}

int genFromLinkSpeed(const std::string& text) {
  // Older kernels write "8 GT/s", newer "8.0 GT/s PCIe".
  double rate = std::atof(text.c_str());
  if (rate <= 0) return 0;
  const double rates[] = {2.5, 5, 8, 16, 32, 64};
  for (int gen = 1; gen <= 6; ++gen) {
    if (std::abs(rate - rates[gen - 1]) < 0.01) return gen;
  }
  return 0;
}

std::string hostHashOf(const Node& node, size_t index) {
  if (node.hostId.rfind(kHostPrefix, 0) == 0) return "0x" + node.hostId.substr(12);
  std::string key = !node.hostId.empty() ? node.hostId
                    : !node.hostname.empty() ? node.hostname
                                             : "node" + std::to_string(index);
  return "0x" + hex64(fnv1a64(key));
}

void setPcieLink(XmlElement& pci, const PcieLink& link) {
  pci.set("link_speed", linkSpeedText(link.gen));
  pci.set("link_width", std::to_string(link.width));
}

// Disjoint sets over device indices, for grouping devices by shared switches.
class Groups {
 public:
  explicit Groups(size_t count) : parent_(count) { std::iota(parent_.begin(), parent_.end(), 0); }
  size_t find(size_t x) {
    while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  void join(size_t a, size_t b) { parent_[find(a)] = find(b); }

 private:
  std::vector<size_t> parent_;
};

// Devices 0..G-1 are GPUs, G..G+N-1 NICs. Rebuilds leaf switches (PIX) and parent switches (PXB)
// from the PCIe classes; NIC-to-NIC classes are not in the model, so a NIC joins the switch of
// the first GPU it is PIX (or PXB) to.
struct SwitchTree {
  std::vector<int> leaf;    // per device: leaf switch id or -1 (directly under the CPU)
  std::vector<int> parent;  // per leaf switch: parent switch id or -1
  int parentCount = 0;
};

SwitchTree rebuildSwitches(const Node& node) {
  const size_t gpus = node.gpus.size();
  const size_t devices = gpus + node.nics.size();
  Groups leafGroups(devices);
  std::vector<bool> switched(devices, false);
  for (size_t a = 0; a < gpus; ++a) {
    for (size_t b = a + 1; b < gpus; ++b) {
      if (node.gpuPaths[a][b] == PathClass::kPix) {
        leafGroups.join(a, b);
        switched[a] = switched[b] = true;
      }
    }
  }
  std::vector<int> pxbGpuOfNic(node.nics.size(), -1);
  for (size_t n = 0; n < node.nics.size(); ++n) {
    for (size_t g = 0; g < gpus; ++g) {
      if (node.gpuNicPaths[g][n] == PathClass::kPix) {
        leafGroups.join(gpus + n, g);
        switched[gpus + n] = switched[g] = true;
        break;
      }
      if (node.gpuNicPaths[g][n] == PathClass::kPxb && pxbGpuOfNic[n] < 0) {
        pxbGpuOfNic[n] = static_cast<int>(g);
      }
    }
  }
  // NICs only PXB to GPUs share a leaf with NICs that see the GPUs the same way.
  std::map<std::vector<PathClass>, size_t> nicRows;
  for (size_t n = 0; n < node.nics.size(); ++n) {
    if (switched[gpus + n] || pxbGpuOfNic[n] < 0) continue;
    std::vector<PathClass> row;
    for (size_t g = 0; g < gpus; ++g) row.push_back(node.gpuNicPaths[g][n]);
    auto [it, inserted] = nicRows.emplace(row, gpus + n);
    if (!inserted) leafGroups.join(gpus + n, it->second);
    switched[gpus + n] = true;
  }
  // A device that is PXB to another needs a leaf switch of its own under the common parent.
  for (size_t a = 0; a < gpus; ++a) {
    for (size_t b = 0; b < gpus; ++b) {
      if (a != b && node.gpuPaths[a][b] == PathClass::kPxb) switched[a] = true;
    }
  }
  for (size_t n = 0; n < node.nics.size(); ++n) {
    if (pxbGpuOfNic[n] >= 0) switched[pxbGpuOfNic[n]] = true;
  }

  SwitchTree tree;
  tree.leaf.assign(devices, -1);
  std::map<size_t, int> leafIds;
  for (size_t d = 0; d < devices; ++d) {
    if (!switched[d]) continue;
    auto [it, inserted] = leafIds.emplace(leafGroups.find(d), static_cast<int>(leafIds.size()));
    tree.leaf[d] = it->second;
  }
  Groups parentGroups(leafIds.size());
  std::vector<bool> hasParent(leafIds.size(), false);
  auto joinLeaves = [&](size_t a, size_t b) {
    if (tree.leaf[a] < 0 || tree.leaf[b] < 0 || tree.leaf[a] == tree.leaf[b]) return;
    parentGroups.join(tree.leaf[a], tree.leaf[b]);
    hasParent[tree.leaf[a]] = hasParent[tree.leaf[b]] = true;
  };
  for (size_t a = 0; a < gpus; ++a) {
    for (size_t b = 0; b < gpus; ++b) {
      if (node.gpuPaths[a][b] == PathClass::kPxb) joinLeaves(a, b);
    }
    for (size_t n = 0; n < node.nics.size(); ++n) {
      if (node.gpuNicPaths[a][n] == PathClass::kPxb) joinLeaves(a, gpus + n);
    }
  }
  tree.parent.assign(leafIds.size(), -1);
  std::map<size_t, int> parentIds;
  for (size_t l = 0; l < leafIds.size(); ++l) {
    if (!hasParent[l]) continue;
    auto [it, inserted] = parentIds.emplace(parentGroups.find(l), static_cast<int>(parentIds.size()));
    tree.parent[l] = it->second;
  }
  tree.parentCount = static_cast<int>(parentIds.size());
  return tree;
}

// Synthetic switches live in PCI domains 0001 (leaf) and 0002 (parent) so that they never
// collide with real devices.
std::string switchBusId(int domain, int id) {
  char text[32];
  std::snprintf(text, sizeof(text), "%04x:%02x:%02x.0", domain, (id / 32) & 0xff, id % 32);
  return text;
}

XmlElement gpuPci(const Node& node, size_t g) {
  const Gpu& gpu = node.gpus[g];
  XmlElement pci;
  pci.name = "pci";
  pci.set("busid", gpu.busId);
  pci.set("class", kClass3dController);
  pci.set("vendor", "0x10de");
  setPcieLink(pci, gpu.pcie);
  XmlElement& element = pci.add("gpu");
  element.set("dev", std::to_string(gpu.index));
  element.set("sm", std::to_string(gpu.smVersion()));
  element.set("gdr", "1");
  if (gpu.nvswitchLinks > 0) {
    XmlElement& link = element.add("nvlink");
    link.set("target", kNvswitchTarget);
    link.set("count", std::to_string(gpu.nvswitchLinks));
    link.set("tclass", kClassNvswitch);
  }
  for (size_t peer = 0; peer < node.gpus.size(); ++peer) {
    int viaSwitch = std::min(gpu.nvswitchLinks, node.gpus[peer].nvswitchLinks);
    int direct = peer == g ? 0 : node.nvlinks[g][peer] - viaSwitch;
    if (direct <= 0) continue;
    XmlElement& link = element.add("nvlink");
    link.set("target", node.gpus[peer].busId);
    link.set("count", std::to_string(direct));
    link.set("tclass", kClass3dController);
  }
  return pci;
}

// NCCL reads speed as an int of Mb/s. A rate beyond it (or NaN) has no spelling there, and a
// plain cast would be undefined behaviour (in practice a negative number).
std::string speedMbps(const Nic& nic) {
  double mbps = std::round(nic.gbitPerSec * 1000);
  if (!(mbps >= 0 && mbps <= INT_MAX)) {
    fail("NIC '", excerpt(nic.name), "': ", numberText(nic.gbitPerSec),
         " Gb/s does not fit NCCL's speed attribute (0 to ", INT_MAX, " Mb/s)");
  }
  return std::to_string(static_cast<long long>(mbps));
}

void addNet(XmlElement& nicElement, const Nic& nic, size_t index) {
  XmlElement& net = nicElement.add("net");
  net.set("name", nic.name);
  net.set("dev", std::to_string(index));
  net.set("speed", speedMbps(nic));
  net.set("port", std::to_string(nic.port));
  net.set("latency", "0.000000");
  if (!nic.guid.empty()) net.set("guid", nic.guid);
  net.set("maxconn", "131072");
  net.set("gdr", isRdma(nic.kind) ? "1" : "0");
  // Not read by NCCL; keeps RoCE apart from InfiniBand on import.
  net.set("link_layer", nic.kind == NicKind::kInfiniband ? "InfiniBand" : "Ethernet");
}

XmlElement nicPci(const Node& node, size_t n) {
  const Nic& nic = node.nics[n];
  XmlElement pci;
  pci.name = "pci";
  pci.set("busid", nic.busId);
  pci.set("class", nic.kind == NicKind::kInfiniband ? kClassInfiniband : kClassEthernet);
  if (nic.kind == NicKind::kEfa) pci.set("vendor", "0x1d0f");
  setPcieLink(pci, nic.pcie);
  addNet(pci.add("nic"), nic, n);
  return pci;
}

XmlElement switchPci(int domain, int id, const PcieLink& link) {
  XmlElement pci;
  pci.name = "pci";
  pci.set("busid", switchBusId(domain, id));
  pci.set("class", kClassBridge);
  setPcieLink(pci, link);
  return pci;
}

// Adds a device's <pci> into `parent`, merging NIC ports that share a PCI function.
void addDevicePci(XmlElement& parent, XmlElement device) {
  const std::string* bus = device.attribute("busid");
  bool isNic = !device.children.empty() && device.children[0].name == "nic";
  if (isNic && bus != nullptr && !bus->empty()) {
    for (auto& sibling : parent.children) {
      const std::string* other = sibling.attribute("busid");
      if (other != nullptr && *other == *bus && !sibling.children.empty() &&
          sibling.children[0].name == "nic") {
        for (auto& net : device.children[0].children) sibling.children[0].children.push_back(net);
        return;
      }
    }
  }
  parent.children.push_back(std::move(device));
}

void appendNode(XmlElement& system, const Node& node, size_t index) {
  const size_t gpus = node.gpus.size();
  const size_t devices = gpus + node.nics.size();
  SwitchTree tree = rebuildSwitches(node);
  std::string hostHash = hostHashOf(node, index);

  auto numaOf = [&](size_t d) { return d < gpus ? node.gpus[d].numa : node.nics[d - gpus].numa; };
  auto linkOf = [&](size_t d) { return d < gpus ? node.gpus[d].pcie : node.nics[d - gpus].pcie; };
  std::set<int> numaIds;
  for (const auto& numa : node.numa) numaIds.insert(numa.id);
  for (size_t d = 0; d < devices; ++d) numaIds.insert(numaOf(d));

  // Each switch goes under the CPU of its first device; switches take a link like their devices.
  std::vector<int> leafNuma(tree.parent.size(), 0), parentNuma(tree.parentCount, 0);
  std::vector<PcieLink> leafLink(tree.parent.size()), parentLink(tree.parentCount);
  for (size_t d = devices; d-- > 0;) {
    int leaf = tree.leaf[d];
    if (leaf < 0) continue;
    leafNuma[leaf] = numaOf(d);
    leafLink[leaf] = linkOf(d);
    if (tree.parent[leaf] >= 0) {
      parentNuma[tree.parent[leaf]] = numaOf(d);
      parentLink[tree.parent[leaf]] = linkOf(d);
    }
  }

  for (int numa : numaIds) {
    XmlElement cpu;
    cpu.name = "cpu";
    cpu.set("host_hash", hostHash);
    cpu.set("numaid", std::to_string(numa));
    for (const auto& entry : node.numa) {
      if (entry.id == numa && !entry.cpus.empty()) cpu.set("affinity", cpuListToMask(entry.cpus));
    }
    if (!node.cpu.arch.empty()) cpu.set("arch", node.cpu.arch);
    if (!node.cpu.vendor.empty()) cpu.set("vendor", node.cpu.vendor);
    if (node.cpu.familyId != 0) cpu.set("familyid", std::to_string(node.cpu.familyId));
    if (node.cpu.modelId != 0) cpu.set("modelid", std::to_string(node.cpu.modelId));

    std::map<int, XmlElement> parents, leaves;
    for (int p = 0; p < tree.parentCount; ++p) {
      if (parentNuma[p] == numa) parents.emplace(p, switchPci(2, p, parentLink[p]));
    }
    for (size_t l = 0; l < tree.parent.size(); ++l) {
      if (leafNuma[l] == numa) leaves.emplace(static_cast<int>(l), switchPci(1, static_cast<int>(l), leafLink[l]));
    }
    for (size_t d = 0; d < devices; ++d) {
      if (numaOf(d) != numa && tree.leaf[d] < 0) continue;
      if (tree.leaf[d] >= 0 && leafNuma[tree.leaf[d]] != numa) continue;
      XmlElement device = d < gpus ? gpuPci(node, d) : nicPci(node, d - gpus);
      if (tree.leaf[d] < 0) {
        addDevicePci(cpu, std::move(device));
      } else {
        addDevicePci(leaves.at(tree.leaf[d]), std::move(device));
      }
    }
    for (auto& [id, leaf] : leaves) {
      int parent = tree.parent[id];
      if (parent >= 0 && parents.count(parent)) {
        parents.at(parent).children.push_back(std::move(leaf));
      } else {
        cpu.children.push_back(std::move(leaf));
      }
    }
    for (auto& [id, parent] : parents) cpu.children.push_back(std::move(parent));
    system.children.push_back(std::move(cpu));
  }
}

// ---- import ---------------------------------------------------------------------------------

struct DeviceSite {
  int cpu = -1;                  // index of its <cpu> within the host
  std::vector<const XmlElement*> switches;  // enclosing <pci> switches, outermost first
};

struct ImportedGpu {
  Gpu gpu;
  DeviceSite site;
  std::map<std::string, int> directLinks;  // target bus id -> count
};

struct ImportedNic {
  Nic nic;
  DeviceSite site;
  int dev = 0;
};

struct HostBuilder {
  Node node;
  std::vector<ImportedGpu> gpus;
  std::vector<ImportedNic> nics;
  int cpus = 0;
};

class NcclXmlImporter {
 public:
  explicit NcclXmlImporter(const std::string& source) : source_(source) {}

  Cluster run(const XmlElement& root) {
    if (root.name != "system") {
      failAt(root, "the root element is <", excerpt(root.name), ">, not <system>");
    }
    const std::string* version = root.attribute("version");
    if (version == nullptr) failAt(root, "<system> has no version attribute");
    if (*version != std::to_string(kNcclTopoXmlVersion)) {
      failAt(root, "<system version=\"", excerpt(*version), "\"> is not supported (NCCL's format is version ",
             kNcclTopoXmlVersion, ")");
    }
    std::vector<std::string> order;
    for (const auto& cpu : root.children) {
      if (cpu.name != "cpu") continue;  // NCCL ignores unknown elements too
      std::string hash = cpu.attribute("host_hash") ? *cpu.attribute("host_hash") : "";
      if (hosts_.count(hash) == 0) order.push_back(hash);
      readCpu(hosts_[hash], cpu, hash);
    }
    Cluster cluster;
    for (const auto& hash : order) cluster.nodes.push_back(finish(hosts_[hash]));
    if (cluster.nodes.empty()) failAt(root, "<system> holds no <cpu>");
    return cluster;
  }

 private:
  template <typename... Parts>
  [[noreturn]] void failAt(const XmlElement& element, Parts&&... parts) const {
    fail(source_, ":", element.line, ": ", std::forward<Parts>(parts)...);
  }

  const std::string& required(const XmlElement& element, const char* key) const {
    const std::string* value = element.attribute(key);
    if (value == nullptr) failAt(element, "<", excerpt(element.name), "> needs attribute ", key);
    return *value;
  }

  // An integer attribute in [min, max]. strtoll saturates on overflow and a cast to int wraps,
  // so neither may pass unchecked.
  int integer(const XmlElement& element, const char* key, int fallback, int min, int max) const {
    const std::string* value = element.attribute(key);
    if (value == nullptr || value->empty()) return fallback;
    auto failValue = [&](const std::string& what) {
      failAt(element, "<", excerpt(element.name), " ", key, "=\"", excerpt(*value), "\">: ", what);
    };
    char* end = nullptr;
    errno = 0;
    long long number = std::strtoll(value->c_str(), &end, 0);
    if (end == value->c_str() || *end != '\0') failValue("not an integer");
    if (errno == ERANGE || number < min || number > max) {
      failValue("out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    return static_cast<int>(number);
  }

  void readCpu(HostBuilder& host, const XmlElement& cpu, const std::string& hash) {
    Node& node = host.node;
    if (!hash.empty()) node.hostId = kHostPrefix + (hash.rfind("0x", 0) == 0 ? hash.substr(2) : hash);
    NumaNode numa;
    numa.id = integer(cpu, "numaid", -1, -1, kMaxId);
    if (const std::string* affinity = cpu.attribute("affinity")) {
      try {
        numa.cpus = cpuMaskToList(*affinity);
      } catch (const Error& error) {
        failAt(cpu, error.what());
      }
    }
    if (numa.id >= 0) node.numa.push_back(numa);
    if (const std::string* arch = cpu.attribute("arch")) node.cpu.arch = *arch;
    if (const std::string* vendor = cpu.attribute("vendor")) node.cpu.vendor = *vendor;
    node.cpu.familyId = integer(cpu, "familyid", 0, 0, kMaxId);
    node.cpu.modelId = integer(cpu, "modelid", 0, 0, kMaxId);
    DeviceSite site;
    site.cpu = host.cpus++;
    cpuNuma_[&host].push_back(numa);
    for (const auto& child : cpu.children) {
      if (child.name == "pci") readPci(host, child, site);
      if (child.name == "nic") readNic(host, child, nullptr, site);
    }
  }

  void readPci(HostBuilder& host, const XmlElement& pci, DeviceSite site) {
    const std::string& bus = required(pci, "busid");
    PcieLink link;
    if (const std::string* speed = pci.attribute("link_speed")) link.gen = genFromLinkSpeed(*speed);
    link.width = integer(pci, "link_width", 0, 0, kMaxPcieWidth);
    bool device = false;
    for (const auto& child : pci.children) {
      if (child.name == "gpu") {
        readGpu(host, child, bus, link, site);
        device = true;
      } else if (child.name == "nic") {
        readNic(host, child, &pci, site);
        device = true;
      }
    }
    if (device) return;
    site.switches.push_back(&pci);
    for (const auto& child : pci.children) {
      if (child.name == "pci") readPci(host, child, site);
    }
  }

  void readGpu(HostBuilder& host, const XmlElement& element, const std::string& bus,
               const PcieLink& link, const DeviceSite& site) {
    ImportedGpu imported;
    Gpu& gpu = imported.gpu;
    gpu.index = integer(element, "dev", static_cast<int>(host.gpus.size()), 0, INT_MAX);
    int sm = integer(element, "sm", 0, 0, kMaxSm);
    gpu.ccMajor = sm / 10;
    gpu.ccMinor = sm % 10;
    gpu.busId = lower(bus);
    gpu.pcie = link;
    gpu.numa = cpuNuma_[&host][site.cpu].id;
    gpu.cpuAffinity = cpuNuma_[&host][site.cpu].cpus;
    for (const auto& nvlink : element.children) {
      if (nvlink.name != "nvlink") continue;
      int count = integer(nvlink, "count", 0, 0, 64);
      const std::string& tclass = required(nvlink, "tclass");
      gpu.nvlinks += count;
      if (tclass.rfind("0x03", 0) == 0) {
        imported.directLinks[lower(required(nvlink, "target"))] += count;
      } else if (tclass == kClassNvswitch) {
        gpu.nvswitchLinks += count;
      }  // links to a CPU (POWER9) carry no GPU traffic here
    }
    gpu.nvlinkGBpsPerLink = gpu.nvlinks > 0 ? nvlinkGBpsPerLinkForSm(sm) : 0;
    imported.site = site;
    host.gpus.push_back(imported);
  }

  void readNic(HostBuilder& host, const XmlElement& nicElement, const XmlElement* pci,
               const DeviceSite& site) {
    for (const auto& net : nicElement.children) {
      if (net.name != "net") continue;
      if (net.attribute("dev") == nullptr) continue;  // NCCL ignores nets without dev as well
      ImportedNic imported;
      Nic& nic = imported.nic;
      nic.name = required(net, "name");
      imported.dev = integer(net, "dev", 0, 0, INT_MAX);
      // NCCL's own type; some NICs say -1, and NCCL takes <= 0 as unknown (then 10 Gb/s).
      int mbps = integer(net, "speed", 0, INT_MIN, INT_MAX);
      nic.gbitPerSec = mbps > 0 ? static_cast<double>(mbps) / 1000.0 : 0;
      nic.port = integer(net, "port", 1, 0, kMaxId);
      if (nic.port < 1) nic.port = 1;  // NCCL's socket transport says port 0
      if (const std::string* guid = net.attribute("guid")) nic.guid = *guid;
      if (pci != nullptr) {
        nic.busId = lower(required(*pci, "busid"));
        if (const std::string* speed = pci->attribute("link_speed")) nic.pcie.gen = genFromLinkSpeed(*speed);
        nic.pcie.width = integer(*pci, "link_width", 0, 0, kMaxPcieWidth);
      }
      auto attributeOf = [&](const XmlElement* element, const char* key) {
        const std::string* value = element != nullptr ? element->attribute(key) : nullptr;
        return value != nullptr ? *value : std::string();
      };
      nic.kind = guessKind(nic.name, attributeOf(pci, "vendor"), attributeOf(pci, "class"),
                           attributeOf(&net, "link_layer"));
      nic.numa = cpuNuma_[&host][site.cpu].id;
      nic.cpuAffinity = cpuNuma_[&host][site.cpu].cpus;
      imported.site = site;
      host.nics.push_back(imported);
    }
  }

  // NCCL's XML has no link layer: our export adds one; otherwise the PCI class tells
  // InfiniBand (0x0207) from Ethernet (0x0200), and verbs device names tell RDMA from sockets.
  static NicKind guessKind(const std::string& name, const std::string& vendor,
                           const std::string& pciClass, const std::string& linkLayer) {
    if (vendor == "0x1d0f" || name.rfind("efa", 0) == 0 || name.rfind("rdmap", 0) == 0) {
      return NicKind::kEfa;
    }
    bool verbsName = name.rfind("mlx", 0) == 0 || name.rfind("ib", 0) == 0 ||
                     name.rfind("bnxt_re", 0) == 0 || name.rfind("irdma", 0) == 0;
    if (!verbsName) return NicKind::kEthernet;
    if (linkLayer == "Ethernet") return NicKind::kRoce;
    if (linkLayer.empty() && pciClass.rfind("0x0200", 0) == 0) return NicKind::kRoce;
    return NicKind::kInfiniband;
  }

  static std::string lower(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  }

  static PathClass pathBetween(const DeviceSite& a, const DeviceSite& b) {
    if (a.cpu != b.cpu) return PathClass::kSys;
    if (!a.switches.empty() && !b.switches.empty() && a.switches.back() == b.switches.back()) {
      return PathClass::kPix;
    }
    for (const XmlElement* s : a.switches) {
      if (std::find(b.switches.begin(), b.switches.end(), s) != b.switches.end()) {
        return PathClass::kPxb;
      }
    }
    return PathClass::kNode;
  }

  Node finish(HostBuilder& host) {
    Node node = host.node;
    std::stable_sort(host.gpus.begin(), host.gpus.end(),
                     [](const ImportedGpu& a, const ImportedGpu& b) { return a.gpu.index < b.gpu.index; });
    std::stable_sort(host.nics.begin(), host.nics.end(),
                     [](const ImportedNic& a, const ImportedNic& b) { return a.dev < b.dev; });
    for (const auto& g : host.gpus) node.gpus.push_back(g.gpu);
    for (const auto& n : host.nics) node.nics.push_back(n.nic);
    const size_t gpus = node.gpus.size();
    node.nvlinks.assign(gpus, std::vector<int>(gpus, 0));
    node.gpuPaths.assign(gpus, std::vector<PathClass>(gpus, PathClass::kSys));
    node.gpuNicPaths.assign(gpus, std::vector<PathClass>(node.nics.size(), PathClass::kSys));
    for (size_t a = 0; a < gpus; ++a) {
      for (size_t b = 0; b < gpus; ++b) {
        node.gpuPaths[a][b] = a == b ? PathClass::kPix : pathBetween(host.gpus[a].site, host.gpus[b].site);
        if (a == b) continue;
        auto direct = host.gpus[a].directLinks.find(node.gpus[b].busId);
        int links = std::min(node.gpus[a].nvswitchLinks, node.gpus[b].nvswitchLinks) +
                    (direct == host.gpus[a].directLinks.end() ? 0 : direct->second);
        node.nvlinks[a][b] = links;
      }
      for (size_t n = 0; n < node.nics.size(); ++n) {
        node.gpuNicPaths[a][n] = pathBetween(host.gpus[a].site, host.nics[n].site);
      }
    }
    // Direct links are listed on both ends in NCCL's dump; keep the matrix symmetric anyway.
    for (size_t a = 0; a < gpus; ++a) {
      for (size_t b = a + 1; b < gpus; ++b) {
        int links = std::max(node.nvlinks[a][b], node.nvlinks[b][a]);
        node.nvlinks[a][b] = node.nvlinks[b][a] = links;
      }
    }
    std::sort(node.numa.begin(), node.numa.end(),
              [](const NumaNode& a, const NumaNode& b) { return a.id < b.id; });
    completeDerived(node);
    return node;
  }

  const std::string& source_;
  std::map<std::string, HostBuilder> hosts_;
  std::map<const HostBuilder*, std::vector<NumaNode>> cpuNuma_;
};

}  // namespace

XmlElement toNcclXml(const Node& node) {
  XmlElement system;
  system.name = "system";
  system.set("version", std::to_string(kNcclTopoXmlVersion));
  appendNode(system, node, 0);
  return system;
}

XmlElement toNcclXml(const Cluster& cluster) {
  XmlElement system;
  system.name = "system";
  system.set("version", std::to_string(kNcclTopoXmlVersion));
  for (size_t n = 0; n < cluster.nodes.size(); ++n) appendNode(system, cluster.nodes[n], n);
  return system;
}

std::string toNcclXmlText(const Cluster& cluster) { return writeXml(toNcclXml(cluster)); }

Cluster parseNcclXml(const std::string& text, const std::string& source) {
  XmlElement root = parseXml(text, source);
  return NcclXmlImporter(source).run(root);
}

}  // namespace nccl_moe::topo
