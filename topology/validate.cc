#include "topology/validate.h"

#include <cctype>
#include <set>
#include <sstream>

#include "topology/cpuset.h"
#include "topology/error.h"

namespace nccl_moe::topo {

namespace {

class Problems {
 public:
  template <typename... Parts>
  void add(Parts&&... parts) {
    std::ostringstream message;
    (message << ... << parts);
    list_.push_back(message.str());
  }
  std::vector<std::string> take() { return std::move(list_); }

 private:
  std::vector<std::string> list_;
};

bool inRange(double value, double min, double max) { return value >= min && value <= max; }

std::string rangeText(double min, double max) {
  return "[" + numberText(min) + ", " + numberText(max) + "]";
}

// CPU lists are parsed where they are used (NCCL XML export), so a list that does not parse is
// a problem here too, with the parser's own message.
void checkCpuList(const std::string& list, const std::string& at, Problems& problems) {
  try {
    parseCpuList(list);
  } catch (const Error& error) {
    problems.add(at, ": ", error.what());
  }
}

template <typename T>
bool hasShape(const Matrix<T>& matrix, size_t rows, size_t cols) {
  if (matrix.size() != rows) return false;
  for (const auto& row : matrix) {
    if (row.size() != cols) return false;
  }
  return true;
}

// The same bounds as the JSON reader, for GPUs and NICs alike: what validate accepts reads back.
void checkPcie(const PcieLink& link, const std::string& at, Problems& problems) {
  if (link.gen < 0 || link.gen > kMaxPcieGen || link.width < 0 || link.width > kMaxPcieWidth ||
      !inRange(link.gbytesPerSec, 0, kMaxLinkGBps)) {
    problems.add(at, ".pcie: gen ", link.gen, " width ", link.width, " gbytes_per_s ", numberText(link.gbytesPerSec),
                 " out of range (gen 0..", kMaxPcieGen, ", width 0..", kMaxPcieWidth, ", GB/s ",
                 rangeText(0, kMaxLinkGBps), ")");
  }
}

void checkGpu(const Node& node, const Gpu& gpu, const std::string& at, Problems& problems) {
  if (gpu.index < 0) problems.add(at, ".index: ", gpu.index, " is negative");
  if (!gpu.busId.empty() && !isPciBusId(gpu.busId)) {
    problems.add(at, ".bus_id: '", excerpt(gpu.busId), "' is not a PCI bus id like 0000:1b:00.0");
  }
  if (gpu.ccMajor < 0 || gpu.ccMinor < 0 || gpu.ccMinor > 9) {
    problems.add(at, ".compute_capability: ", gpu.ccMajor, ".", gpu.ccMinor, " is not valid");
  }
  if (gpu.smCount < 0) problems.add(at, ".sm_count: ", gpu.smCount, " is negative");
  if (gpu.nvlinks < 0 || gpu.nvswitchLinks < 0 || gpu.nvswitchLinks > gpu.nvlinks) {
    problems.add(at, ".nvlink: links ", gpu.nvlinks, " and switch_links ", gpu.nvswitchLinks,
                 " must satisfy 0 <= switch_links <= links");
  }
  if (!inRange(gpu.nvlinkGBpsPerLink, 0, kMaxLinkGBps)) {
    problems.add(at, ".nvlink.gbytes_per_s_per_link: ", numberText(gpu.nvlinkGBpsPerLink),
                 " is out of range ", rangeText(0, kMaxLinkGBps));
  } else if (gpu.nvlinks > 0 && gpu.nvlinkGBpsPerLink == 0) {
    problems.add(at, ".nvlink.gbytes_per_s_per_link: ", numberText(gpu.nvlinkGBpsPerLink),
                 " must be > 0 when the GPU has NVLinks");
  }
  checkPcie(gpu.pcie, at, problems);
  checkCpuList(gpu.cpuAffinity, at + ".cpu_affinity", problems);
  if (gpu.rail < -1 || gpu.rail >= static_cast<int>(node.nics.size())) {
    problems.add(at, ".rail: ", gpu.rail, " is not a NIC index (node has ", node.nics.size(),
                 " NICs; -1 means none)");
  }
  if (gpu.numa >= 0 && !node.numa.empty()) {
    bool known = false;
    for (const auto& numa : node.numa) known = known || numa.id == gpu.numa;
    if (!known) problems.add(at, ".numa: ", gpu.numa, " is not one of the node's NUMA ids");
  }
}

void checkNic(const Nic& nic, const std::string& at, Problems& problems) {
  if (nic.name.empty()) problems.add(at, ".name: must not be empty");
  if (!nic.busId.empty() && !isPciBusId(nic.busId)) {
    problems.add(at, ".bus_id: '", excerpt(nic.busId), "' is not a PCI bus id like 0000:1a:00.0");
  }
  if (!inRange(nic.gbitPerSec, 0, kMaxNicGbitPerSec)) {
    problems.add(at, ".gbit_per_s: ", numberText(nic.gbitPerSec), " is out of range ",
                 rangeText(0, kMaxNicGbitPerSec));
  }
  if (nic.port < 1) problems.add(at, ".port: ", nic.port, " must be >= 1");
  checkPcie(nic.pcie, at, problems);
  checkCpuList(nic.cpuAffinity, at + ".cpu_affinity", problems);
}

void checkMatrices(const Node& node, const std::string& at, Problems& problems) {
  const size_t gpus = node.gpus.size();
  if (!hasShape(node.nvlinks, gpus, gpus)) {
    problems.add(at, ".nvlinks: must be a ", gpus, "x", gpus, " matrix");
  } else {
    for (size_t a = 0; a < gpus; ++a) {
      for (size_t b = 0; b < gpus; ++b) {
        int links = node.nvlinks[a][b];
        if (a == b && links != 0) problems.add(at, ".nvlinks[", a, "][", b, "]: must be 0");
        if (links != node.nvlinks[b][a]) {
          problems.add(at, ".nvlinks[", a, "][", b, "]: ", links, " differs from [", b, "][", a,
                       "] ", node.nvlinks[b][a]);
        }
        if (links < 0 || links > node.gpus[a].nvlinks) {
          problems.add(at, ".nvlinks[", a, "][", b, "]: ", links, " exceeds gpus[", a,
                       "].nvlink.links ", node.gpus[a].nvlinks);
        }
      }
    }
  }
  if (!hasShape(node.gpuPaths, gpus, gpus)) {
    problems.add(at, ".gpu_paths: must be a ", gpus, "x", gpus, " matrix");
  } else {
    for (size_t a = 0; a < gpus; ++a) {
      for (size_t b = a + 1; b < gpus; ++b) {
        if (node.gpuPaths[a][b] != node.gpuPaths[b][a]) {
          problems.add(at, ".gpu_paths[", a, "][", b, "]: ", toString(node.gpuPaths[a][b]),
                       " differs from [", b, "][", a, "] ", toString(node.gpuPaths[b][a]));
        }
      }
    }
  }
  if (!hasShape(node.gpuNicPaths, gpus, node.nics.size())) {
    problems.add(at, ".gpu_nic_paths: must be a ", gpus, "x", node.nics.size(), " matrix");
  }
  if (!node.p2pPerfRank.empty() && !hasShape(node.p2pPerfRank, gpus, gpus)) {
    problems.add(at, ".p2p_perf_rank: must be empty or a ", gpus, "x", gpus, " matrix");
  }
}

}  // namespace

bool isPciBusId(const std::string& text) {
  if (text.size() != 12) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (i == 4 || i == 7) {
      if (c != ':') return false;
    } else if (i == 10) {
      if (c != '.') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c)) ||
               std::isupper(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> findProblems(const Cluster& cluster) {
  Problems problems;
  if (cluster.nodes.empty()) problems.add("nodes: a cluster needs at least one node");
  std::set<std::string> hostIds;
  for (size_t n = 0; n < cluster.nodes.size(); ++n) {
    const Node& node = cluster.nodes[n];
    std::string at = "nodes[" + std::to_string(n) + "]";
    if (!node.hostId.empty() && !hostIds.insert(node.hostId).second) {
      problems.add(at, ".host_id: '", excerpt(node.hostId), "' appears on an earlier node");
    }
    std::set<int> numaIds;
    for (size_t i = 0; i < node.numa.size(); ++i) {
      std::string numaAt = at + ".numa[" + std::to_string(i) + "]";
      if (!numaIds.insert(node.numa[i].id).second) {
        problems.add(numaAt, ".id: ", node.numa[i].id, " appears twice");
      }
      checkCpuList(node.numa[i].cpus, numaAt + ".cpus", problems);
    }
    std::set<int> gpuIndices;
    std::set<std::string> busIds;
    for (size_t g = 0; g < node.gpus.size(); ++g) {
      std::string gpuAt = at + ".gpus[" + std::to_string(g) + "]";
      const Gpu& gpu = node.gpus[g];
      checkGpu(node, gpu, gpuAt, problems);
      if (!gpuIndices.insert(gpu.index).second) {
        problems.add(gpuAt, ".index: ", gpu.index, " appears twice on the node");
      }
      if (!gpu.busId.empty() && !busIds.insert(gpu.busId).second) {
        problems.add(gpuAt, ".bus_id: ", excerpt(gpu.busId), " appears twice on the node");
      }
    }
    std::set<std::string> nicNames;
    for (size_t i = 0; i < node.nics.size(); ++i) {
      std::string nicAt = at + ".nics[" + std::to_string(i) + "]";
      checkNic(node.nics[i], nicAt, problems);
      if (!nicNames.insert(node.nics[i].name).second) {
        problems.add(nicAt, ".name: '", excerpt(node.nics[i].name), "' appears twice on the node");
      }
    }
    checkMatrices(node, at, problems);
    if (!node.nvlinkDomain.empty()) {
      for (size_t g = 0; g < node.gpus.size(); ++g) {
        if (node.gpus[g].nvswitchLinks == 0) {
          problems.add(at, ".gpus[", g, "]: node is in NVLink domain '", excerpt(node.nvlinkDomain),
                       "' but the GPU has no NVSwitch links");
        }
      }
    }
  }
  return problems.take();
}

void requireValid(const Cluster& cluster, const std::string& where) {
  std::vector<std::string> problems = findProblems(cluster);
  if (problems.empty()) return;
  std::ostringstream message;
  message << where << ": " << problems.size() << " problem" << (problems.size() == 1 ? "" : "s")
          << " in the cluster model:";
  for (const auto& problem : problems) message << "\n  " << problem;
  throw Error(message.str());
}

}  // namespace nccl_moe::topo
