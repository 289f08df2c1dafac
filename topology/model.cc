#include "topology/model.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <tuple>

namespace nccl_moe::topo {

namespace {

struct PathName {
  PathClass path;
  const char* name;
};
constexpr PathName kPathNames[] = {{PathClass::kPix, "PIX"},
                                   {PathClass::kPxb, "PXB"},
                                   {PathClass::kPhb, "PHB"},
                                   {PathClass::kNode, "NODE"},
                                   {PathClass::kSys, "SYS"}};

struct KindName {
  NicKind kind;
  const char* name;
};
constexpr KindName kKindNames[] = {{NicKind::kInfiniband, "infiniband"},
                                   {NicKind::kRoce, "roce"},
                                   {NicKind::kEfa, "efa"},
                                   {NicKind::kEthernet, "ethernet"}};

template <typename T>
void resizeSquare(Matrix<T>& matrix, size_t rows, size_t cols, T fill) {
  if (matrix.size() == rows && std::all_of(matrix.begin(), matrix.end(),
                                           [&](const auto& row) { return row.size() == cols; })) {
    return;
  }
  matrix.assign(rows, std::vector<T>(cols, fill));
}

bool usableForNetwork(const Node& node, const Nic& nic) {
  bool anyRdma = std::any_of(node.nics.begin(), node.nics.end(),
                             [](const Nic& n) { return isRdma(n.kind); });
  return !anyRdma || isRdma(nic.kind);
}

}  // namespace

const char* toString(PathClass path) {
  for (const auto& entry : kPathNames) {
    if (entry.path == path) return entry.name;
  }
  return "?";
}

std::optional<PathClass> pathClassFromString(const std::string& text) {
  for (const auto& entry : kPathNames) {
    if (text == entry.name) return entry.path;
  }
  return std::nullopt;
}

const char* toString(NicKind kind) {
  for (const auto& entry : kKindNames) {
    if (entry.kind == kind) return entry.name;
  }
  return "?";
}

std::optional<NicKind> nicKindFromString(const std::string& text) {
  for (const auto& entry : kKindNames) {
    if (text == entry.name) return entry.kind;
  }
  return std::nullopt;
}

bool isRdma(NicKind kind) { return kind != NicKind::kEthernet; }

double pcieLaneGBps(int gen) {
  // GT/s per lane x encoding efficiency / 8 bits: 8b/10b for gen 1-2, 128b/130b for gen 3-5,
  // and gen 6 (PAM4, FLIT) counted at its 64 GT/s raw rate with 242/256 FLIT efficiency.
  switch (gen) {
    case 1: return 2.5 * 0.8 / 8;
    case 2: return 5.0 * 0.8 / 8;
    case 3: return 8.0 * 128 / 130 / 8;
    case 4: return 16.0 * 128 / 130 / 8;
    case 5: return 32.0 * 128 / 130 / 8;
    case 6: return 64.0 * 242 / 256 / 8;
    default: return 0;
  }
}

double pcieBandwidthGBps(const PcieLink& link) {
  if (link.gbytesPerSec > 0) return link.gbytesPerSec;
  return pcieLaneGBps(link.gen) * link.width;
}

bool PcieLink::operator==(const PcieLink& other) const {
  return std::tie(gen, width, gbytesPerSec) ==
         std::tie(other.gen, other.width, other.gbytesPerSec);
}

bool CpuInfo::operator==(const CpuInfo& other) const {
  return std::tie(arch, vendor, model, familyId, modelId) ==
         std::tie(other.arch, other.vendor, other.model, other.familyId, other.modelId);
}

bool NumaNode::operator==(const NumaNode& other) const {
  return std::tie(id, cpus, memoryBytes) == std::tie(other.id, other.cpus, other.memoryBytes);
}

bool Gpu::operator==(const Gpu& other) const {
  return std::tie(index, name, busId, ccMajor, ccMinor, smCount, memoryBytes, numa, cpuAffinity,
                  pcie, nvlinks, nvswitchLinks, nvlinkGBpsPerLink, rail) ==
         std::tie(other.index, other.name, other.busId, other.ccMajor, other.ccMinor,
                  other.smCount, other.memoryBytes, other.numa, other.cpuAffinity, other.pcie,
                  other.nvlinks, other.nvswitchLinks, other.nvlinkGBpsPerLink, other.rail);
}

bool Nic::operator==(const Nic& other) const {
  return std::tie(name, kind, busId, numa, cpuAffinity, gbitPerSec, port, guid, netdev, pcie) ==
         std::tie(other.name, other.kind, other.busId, other.numa, other.cpuAffinity,
                  other.gbitPerSec, other.port, other.guid, other.netdev, other.pcie);
}

bool Node::operator==(const Node& other) const {
  return std::tie(hostname, hostId, nvlinkDomain, cpu, numa, gpus, nics, nvlinks, gpuPaths,
                  gpuNicPaths, p2pPerfRank) ==
         std::tie(other.hostname, other.hostId, other.nvlinkDomain, other.cpu, other.numa,
                  other.gpus, other.nics, other.nvlinks, other.gpuPaths, other.gpuNicPaths,
                  other.p2pPerfRank);
}

int Cluster::gpuCount() const {
  int count = 0;
  for (const auto& node : nodes) count += static_cast<int>(node.gpus.size());
  return count;
}

bool Cluster::operator==(const Cluster& other) const {
  return name == other.name && nodes == other.nodes;
}

std::vector<NvlinkDomain> nvlinkDomains(const Cluster& cluster) {
  std::vector<NvlinkDomain> domains;
  std::map<std::string, size_t> byName;
  for (size_t n = 0; n < cluster.nodes.size(); ++n) {
    const Node& node = cluster.nodes[n];
    size_t index = domains.size();
    if (!node.nvlinkDomain.empty()) {
      auto [it, inserted] = byName.emplace(node.nvlinkDomain, domains.size());
      index = it->second;
      if (!inserted) {
        domains[index].nodes.push_back(static_cast<int>(n));
        domains[index].gpuCount += static_cast<int>(node.gpus.size());
        continue;
      }
    }
    domains.push_back({{static_cast<int>(n)}, static_cast<int>(node.gpus.size())});
  }
  return domains;
}

std::vector<int> closestNicRails(const Node& node) {
  std::vector<int> rails(node.gpus.size(), -1);
  std::vector<int> load(node.nics.size(), 0);
  for (size_t g = 0; g < node.gpus.size(); ++g) {
    // Lexicographic key: smaller is better.
    using Key = std::tuple<int, int, int, int, size_t>;
    std::optional<Key> best;
    for (size_t n = 0; n < node.nics.size(); ++n) {
      const Nic& nic = node.nics[n];
      PathClass path = PathClass::kSys;
      if (g < node.gpuNicPaths.size() && n < node.gpuNicPaths[g].size()) {
        path = node.gpuNicPaths[g][n];
      }
      bool sameNuma = nic.numa >= 0 && nic.numa == node.gpus[g].numa;
      Key key{usableForNetwork(node, nic) ? 0 : 1, static_cast<int>(path), sameNuma ? 0 : 1,
              load[n], n};
      if (!best || key < *best) {
        best = key;
        rails[g] = static_cast<int>(n);
      }
    }
    if (rails[g] >= 0) ++load[rails[g]];
  }
  return rails;
}

void completeDerived(Node& node) {
  const size_t gpus = node.gpus.size();
  const size_t nics = node.nics.size();
  if (node.nvlinks.size() != gpus) {
    node.nvlinks.assign(gpus, std::vector<int>(gpus, 0));
    for (size_t a = 0; a < gpus; ++a) {
      for (size_t b = 0; b < gpus; ++b) {
        if (a == b) continue;
        node.nvlinks[a][b] = std::min(node.gpus[a].nvswitchLinks, node.gpus[b].nvswitchLinks);
      }
    }
  }
  resizeSquare(node.gpuPaths, gpus, gpus, PathClass::kSys);
  for (size_t g = 0; g < gpus; ++g) node.gpuPaths[g][g] = PathClass::kPix;  // "X": by convention
  resizeSquare(node.gpuNicPaths, gpus, nics, PathClass::kSys);
  bool railsMissing = std::any_of(node.gpus.begin(), node.gpus.end(),
                                  [](const Gpu& gpu) { return gpu.rail < 0; });
  if (railsMissing && nics > 0) {
    std::vector<int> rails = closestNicRails(node);
    for (size_t g = 0; g < gpus; ++g) {
      if (node.gpus[g].rail < 0) node.gpus[g].rail = rails[g];
    }
  }
}

double nvlinkGBpsPerLinkForSm(int sm) {
  if (sm >= 100) return 50;
  if (sm >= 70) return 25;
  if (sm >= 60) return 20;
  return 0;
}

std::string normalizePciBusId(const std::string& text) {
  std::string lower;
  for (char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t colon = lower.find(':');
  if (colon != std::string::npos && colon > 4) lower = lower.substr(colon - 4);
  return lower;
}

double nvlinkGBpsPerGpu(const Node& node) {
  if (node.gpus.empty()) return 0;
  double least = std::numeric_limits<double>::infinity();
  for (const auto& gpu : node.gpus) least = std::min(least, gpu.nvlinkGBps());
  return least;
}

double networkGBpsPerGpu(const Node& node) {
  if (node.gpus.empty()) return 0;
  double total = 0;
  for (const auto& nic : node.nics) {
    if (usableForNetwork(node, nic)) total += nic.gbytesPerSec();
  }
  return total / static_cast<double>(node.gpus.size());
}

double pcieGBpsPerGpu(const Node& node) {
  if (node.gpus.empty()) return 0;
  double least = std::numeric_limits<double>::infinity();
  for (const auto& gpu : node.gpus) least = std::min(least, pcieBandwidthGBps(gpu.pcie));
  return least;
}

}  // namespace nccl_moe::topo
