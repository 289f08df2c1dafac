// The cluster model: nodes -> GPUs, NICs and the links between them, with bandwidths.
//
// Units: bandwidths are per direction; GPU-side bandwidths in GB/s (1e9 bytes/s), NIC link rates
// in Gb/s (1e9 bits/s) as vendors quote them. Indices (GPU, NIC, NUMA) are local to a node.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nccl_moe::topo {

// PCIe distance between two devices, in nvidia-smi's terms (closest first).
enum class PathClass {
  kPix,   // same PCIe switch (at most one bridge)
  kPxb,   // several PCIe switches, same host bridge
  kPhb,   // through a PCIe host bridge (the CPU root complex)
  kNode,  // between host bridges of one NUMA node
  kSys,   // across NUMA nodes (the SMP interconnect)
};

const char* toString(PathClass path);
std::optional<PathClass> pathClassFromString(const std::string& text);

enum class NicKind { kInfiniband, kRoce, kEfa, kEthernet };

const char* toString(NicKind kind);
std::optional<NicKind> nicKindFromString(const std::string& text);
// InfiniBand, RoCE and EFA carry GPU-direct RDMA; plain Ethernet goes through sockets.
bool isRdma(NicKind kind);

// The largest rates the model takes (readers and findProblems check them). NCCL reads a NIC's
// speed as an int of Mb/s (at most 2147483647), so 1e6 Gb/s still fits its XML; the GB/s limit
// of one link (a PCIe link, or one NVLink) is far above any real one and keeps links x rate and
// the cost model's sums finite.
inline constexpr double kMaxNicGbitPerSec = 1e6;
inline constexpr double kMaxLinkGBps = 1e6;
// PCIe link widths: x32 is the widest slot, but NCCL reports a bonded NIC as the sum of its ports'
// widths; 256 lanes covers 8 bonded x32 ports. One limit for GPUs and NICs, in every reader.
inline constexpr int kMaxPcieWidth = 256;
inline constexpr int kMaxPcieGen = 6;

struct PcieLink {
  int gen = 0;               // 0: unknown
  int width = 0;             // lanes; 0: unknown
  double gbytesPerSec = 0;   // usable per direction; 0: unknown

  bool operator==(const PcieLink& other) const;
};

// Per-lane usable GB/s of a PCIe generation after line encoding (gen 1..6), 0 if unknown.
double pcieLaneGBps(int gen);
// gbytesPerSec when known, else derived from gen x width, else 0.
double pcieBandwidthGBps(const PcieLink& link);

struct CpuInfo {
  std::string arch;    // x86_64, arm64, ppc64
  std::string vendor;  // GenuineIntel, AuthenticAMD, ...
  std::string model;   // marketing name, free text
  int familyId = 0;    // CPUID family / model (x86), 0 when unknown
  int modelId = 0;

  bool operator==(const CpuInfo& other) const;
};

struct NumaNode {
  int id = 0;
  std::string cpus;          // CPU list, e.g. "0-55,112-167"
  uint64_t memoryBytes = 0;  // 0: unknown

  bool operator==(const NumaNode& other) const;
};

struct Gpu {
  int index = 0;             // CUDA ordinal on its node
  std::string name;          // e.g. "NVIDIA H100 80GB HBM3"
  std::string busId;         // "0000:1b:00.0", lower case
  int ccMajor = 0;           // compute capability; 0.0: unknown
  int ccMinor = 0;
  int smCount = 0;
  uint64_t memoryBytes = 0;
  int numa = -1;             // -1: unknown
  std::string cpuAffinity;   // CPU list of the CPUs closest to it
  PcieLink pcie;
  int nvlinks = 0;           // active NVLinks in total
  int nvswitchLinks = 0;     // of those, links that end on an NVSwitch
  double nvlinkGBpsPerLink = 0;
  int rail = -1;             // index of its NIC (the closest one); -1: none

  int smVersion() const { return ccMajor * 10 + ccMinor; }
  double nvlinkGBps() const { return nvlinks * nvlinkGBpsPerLink; }
  bool operator==(const Gpu& other) const;
};

struct Nic {
  std::string name;          // verbs device (mlx5_0, efa_0) or interface (eth0)
  NicKind kind = NicKind::kEthernet;
  std::string busId;
  int numa = -1;
  std::string cpuAffinity;
  double gbitPerSec = 0;     // link rate; 0: unknown
  int port = 1;
  std::string guid;          // node GUID when the system tells, "0x..."
  std::string netdev;        // the kernel interface behind a verbs device (ib0, ens1np0)
  PcieLink pcie;

  double gbytesPerSec() const { return gbitPerSec / 8.0; }
  bool operator==(const Nic& other) const;
};

template <typename T>
using Matrix = std::vector<std::vector<T>>;

struct Node {
  std::string hostname;
  std::string hostId;        // NCCL_HOSTID when set, else hostname + boot id
  std::string nvlinkDomain;  // shared by nodes of one multi-node NVLink domain; "" = this node
  CpuInfo cpu;
  std::vector<NumaNode> numa;
  std::vector<Gpu> gpus;
  std::vector<Nic> nics;
  Matrix<int> nvlinks;            // [gpu][gpu]: NVLinks between the pair (via switch: the min)
  Matrix<PathClass> gpuPaths;     // [gpu][gpu]: PCIe class (diagonal PIX, shown as X)
  Matrix<PathClass> gpuNicPaths;  // [gpu][nic]
  Matrix<int> p2pPerfRank;        // [gpu][gpu]: CUDA P2P performance rank, -1 no access;
                                  // empty when unknown

  bool operator==(const Node& other) const;
};

struct Cluster {
  std::string name;
  std::vector<Node> nodes;

  int gpuCount() const;
  bool operator==(const Cluster& other) const;
};

// A group of nodes whose GPUs reach each other over NVLink.
struct NvlinkDomain {
  std::vector<int> nodes;
  int gpuCount = 0;
};

// Domains in order of first node; nodes with an empty nvlinkDomain are a domain each.
std::vector<NvlinkDomain> nvlinkDomains(const Cluster& cluster);

// Fills what a hand-written or partial node leaves out: square matrices sized to the devices
// (nvlinks from switch links, PCIe classes SYS), NIC-less rails, and rails by closeness.
void completeDerived(Node& node);

// For each GPU, the index of its NIC: RDMA NICs first (when any), then the closest PCIe class,
// then the same NUMA node, then the NIC with the fewest GPUs so far, then the lowest index.
std::vector<int> closestNicRails(const Node& node);

// Per-link NVLink bandwidth per direction by compute capability (GB/s), 0 when unknown:
// NVLink1 (sm60) 20, NVLink2/3/4 (sm70/80/90) 25, NVLink5 (sm100 and later) 50.
double nvlinkGBpsPerLinkForSm(int sm);

// "0000:1B:00.0" or NVML's "00000000:1B:00.0" -> "0000:1b:00.0".
std::string normalizePciBusId(const std::string& text);

// Aggregate bandwidths a GPU of `node` can use, per direction.
double nvlinkGBpsPerGpu(const Node& node);   // min over GPUs; 0 without NVLink
double networkGBpsPerGpu(const Node& node);  // (sum of usable NIC rates) / GPUs
double pcieGBpsPerGpu(const Node& node);     // min over GPUs of their PCIe link

}  // namespace nccl_moe::topo
