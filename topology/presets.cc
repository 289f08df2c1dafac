#include "topology/presets.h"

#include <cstdio>
#include <functional>

#include "topology/error.h"

namespace nccl_moe::topo {

namespace {

constexpr uint64_t kMiB = 1024ull * 1024;
constexpr uint64_t kGiB = 1024ull * kMiB;

// Where each device sits: its NUMA node and leaf PCIe switch; leaf switches may share a parent
// switch (devices under sibling leaves are PXB). The PCIe class of a pair follows from these.
struct Placement {
  int numa = 0;
  int leafSwitch = -1;  // -1: alone on a root port
};

struct Layout {
  std::vector<int> switchParent;  // per leaf switch: its parent switch, or -1
  std::vector<Placement> gpus;
  std::vector<Placement> nics;
};

PathClass pathBetween(const Layout& layout, const Placement& a, const Placement& b) {
  if (a.leafSwitch >= 0 && a.leafSwitch == b.leafSwitch) return PathClass::kPix;
  if (a.leafSwitch >= 0 && b.leafSwitch >= 0) {
    int parentA = layout.switchParent[a.leafSwitch];
    int parentB = layout.switchParent[b.leafSwitch];
    if (parentA >= 0 && parentA == parentB) return PathClass::kPxb;
  }
  return a.numa == b.numa ? PathClass::kNode : PathClass::kSys;
}

std::string busId(int bus) {
  char text[16];
  std::snprintf(text, sizeof(text), "0000:%02x:00.0", bus & 0xff);
  return text;
}

// A node of identical GPUs and identical NICs placed by `layout`.
struct NodeRecipe {
  CpuInfo cpu;
  std::vector<NumaNode> numa;
  Gpu gpu;                    // template: index, bus id, numa, affinity, rail are filled in
  std::vector<int> gpuBuses;
  Nic nic;                    // template: name, bus id, numa, affinity are filled in
  std::string nicPrefix;      // names are prefix + index
  std::vector<int> nicBuses;
  Layout layout;
};

std::string cpusOf(const std::vector<NumaNode>& numa, int id) {
  for (const auto& n : numa) {
    if (n.id == id) return n.cpus;
  }
  return "";
}

Node buildNode(const NodeRecipe& recipe) {
  Node node;
  node.cpu = recipe.cpu;
  node.numa = recipe.numa;
  for (size_t g = 0; g < recipe.layout.gpus.size(); ++g) {
    Gpu gpu = recipe.gpu;
    gpu.index = static_cast<int>(g);
    gpu.busId = busId(recipe.gpuBuses[g]);
    gpu.numa = recipe.layout.gpus[g].numa;
    gpu.cpuAffinity = cpusOf(recipe.numa, gpu.numa);
    node.gpus.push_back(gpu);
  }
  for (size_t n = 0; n < recipe.layout.nics.size(); ++n) {
    Nic nic = recipe.nic;
    nic.name = recipe.nicPrefix + std::to_string(n);
    nic.busId = busId(recipe.nicBuses[n]);
    nic.numa = recipe.layout.nics[n].numa;
    nic.cpuAffinity = cpusOf(recipe.numa, nic.numa);
    node.nics.push_back(nic);
  }
  const auto& layout = recipe.layout;
  node.gpuPaths.assign(layout.gpus.size(), {});
  node.gpuNicPaths.assign(layout.gpus.size(), {});
  for (size_t a = 0; a < layout.gpus.size(); ++a) {
    for (size_t b = 0; b < layout.gpus.size(); ++b) {
      node.gpuPaths[a].push_back(pathBetween(layout, layout.gpus[a], layout.gpus[b]));
    }
    for (size_t n = 0; n < layout.nics.size(); ++n) {
      node.gpuNicPaths[a].push_back(pathBetween(layout, layout.gpus[a], layout.nics[n]));
    }
  }
  completeDerived(node);  // NVSwitch pairs, diagonal, rails by closeness
  return node;
}

NumaNode numaNode(int id, const std::string& cpus, uint64_t memory) { return {id, cpus, memory}; }

// --- DGX H100 -----------------------------------------------------------------------------
// NVIDIA DGX H100 datasheet and user guide: 8x H100 SXM5 80GB on 4 third-generation NVSwitch
// chips, 18 NVLink4 links per GPU at 25 GB/s each (450 GB/s per direction, "900 GB/s"
// bidirectional); 8x ConnectX-7 single-port 400 Gb/s InfiniBand NDR for the compute fabric (the
// two dual-port storage CX7s are left out); 2x Xeon Platinum 8480C (56 cores, Sapphire Rapids,
// CPUID family 6 model 0x8f), 2 TB RAM; PCIe Gen5 x16 to every GPU and NIC. SM count 132 and
// 81559 MiB as nvidia-smi reports an H100 80GB HBM3. Each GPU shares a PCIe switch with its NIC
// (PIX); GPUs 0-3 and NICs 0-3 sit on NUMA 0, the rest on NUMA 1. Bus ids are illustrative
// (the DGX names its NICs mlx5_0,3,4,5,6,9,10,11; here mlx5_0..7).
NodeRecipe hopperRecipe(const std::string& gpuName, uint64_t gpuMemory) {
  NodeRecipe r;
  r.cpu = {"x86_64", "GenuineIntel", "Intel(R) Xeon(R) Platinum 8480C", 6, 0x8f};
  r.numa = {numaNode(0, "0-55,112-167", 1024 * kGiB), numaNode(1, "56-111,168-223", 1024 * kGiB)};
  r.gpu.name = gpuName;
  r.gpu.ccMajor = 9;
  r.gpu.ccMinor = 0;
  r.gpu.smCount = 132;
  r.gpu.memoryBytes = gpuMemory;
  r.gpu.pcie = {5, 16, 0};
  r.gpu.nvlinks = 18;
  r.gpu.nvswitchLinks = 18;
  r.gpu.nvlinkGBpsPerLink = 25;
  r.gpuBuses = {0x1b, 0x43, 0x52, 0x61, 0x9d, 0xc3, 0xd1, 0xdf};
  r.nic.kind = NicKind::kInfiniband;
  r.nic.gbitPerSec = 400;
  r.nic.pcie = {5, 16, 0};
  r.nicPrefix = "mlx5_";
  r.nicBuses = {0x19, 0x41, 0x50, 0x5f, 0x9b, 0xc1, 0xcf, 0xdd};
  for (int g = 0; g < 8; ++g) {
    r.layout.switchParent.push_back(-1);
    r.layout.gpus.push_back({g / 4, g});
    r.layout.nics.push_back({g / 4, g});
  }
  return r;
}

std::vector<Node> dgxH100() { return {buildNode(hopperRecipe("NVIDIA H100 80GB HBM3", 81559 * kMiB))}; }

// --- HGX H200 -----------------------------------------------------------------------------
// NVIDIA HGX H200 8-GPU board: H200 SXM 141 GB HBM3e (143771 MiB as nvidia-smi reports, 132
// SMs, compute capability 9.0), NVLink4 18 links x 25 GB/s = 450 GB/s per direction. The host
// is the OEM's; modelled like the DGX H100 reference (2 sockets, 8x CX7 400 Gb/s, one per GPU
// behind the same PCIe switch).
std::vector<Node> hgxH200() { return {buildNode(hopperRecipe("NVIDIA H200", 143771 * kMiB))}; }

// --- DGX A100 -----------------------------------------------------------------------------
// NVIDIA DGX A100 user guide: 8x A100 SXM4 80GB (108 SMs, compute capability 8.0, 81920 MiB) on
// 6 NVSwitch chips, 12 NVLink3 links per GPU at 25 GB/s (300 GB/s per direction); 8x ConnectX-6
// 200 Gb/s InfiniBand HDR for compute; 2x AMD EPYC 7742 (64 cores, family 23 model 0x31) set to
// NPS4, i.e. 8 NUMA nodes of 16 cores; PCIe Gen4 x16. Four PCIe switch complexes each hold two
// GPUs on one leaf switch and two NICs on another (GPU-NIC: PXB; GPU pairs: PIX); the complexes
// sit on NUMA 3, 1, 7, 5 (GPU pairs 0-1, 2-3, 4-5, 6-7), as nvidia-smi topo -m shows on a DGX.
std::vector<Node> dgxA100() {
  NodeRecipe r;
  r.cpu = {"x86_64", "AuthenticAMD", "AMD EPYC 7742 64-Core Processor", 23, 0x31};
  for (int n = 0; n < 8; ++n) {
    std::string cpus = std::to_string(16 * n) + "-" + std::to_string(16 * n + 15) + "," +
                       std::to_string(128 + 16 * n) + "-" + std::to_string(128 + 16 * n + 15);
    r.numa.push_back(numaNode(n, cpus, 128 * kGiB));
  }
  r.gpu.name = "NVIDIA A100-SXM4-80GB";
  r.gpu.ccMajor = 8;
  r.gpu.ccMinor = 0;
  r.gpu.smCount = 108;
  r.gpu.memoryBytes = 81920 * kMiB;
  r.gpu.pcie = {4, 16, 0};
  r.gpu.nvlinks = 12;
  r.gpu.nvswitchLinks = 12;
  r.gpu.nvlinkGBpsPerLink = 25;
  r.gpuBuses = {0x07, 0x0f, 0x47, 0x4e, 0x87, 0x90, 0xb7, 0xbd};
  r.nic.kind = NicKind::kInfiniband;
  r.nic.gbitPerSec = 200;
  r.nic.pcie = {4, 16, 0};
  r.nicPrefix = "mlx5_";
  r.nicBuses = {0x0c, 0x12, 0x4b, 0x54, 0x8d, 0x94, 0xba, 0xcc};
  const int complexNuma[4] = {3, 1, 7, 5};
  for (int c = 0; c < 4; ++c) {
    int gpuLeaf = static_cast<int>(r.layout.switchParent.size());
    r.layout.switchParent.push_back(c);  // leaf for the GPU pair
    r.layout.switchParent.push_back(c);  // leaf for the NIC pair
    for (int i = 0; i < 2; ++i) {
      r.layout.gpus.push_back({complexNuma[c], gpuLeaf});
      r.layout.nics.push_back({complexNuma[c], gpuLeaf + 1});
    }
  }
  return {buildNode(r)};
}

// --- 8-GPU PCIe box, 2 NICs -----------------------------------------------------------------
// A generic 2-socket PCIe server: 8x NVIDIA L40S (48 GB GDDR6 = 46068 MiB, 142 SMs, compute
// capability 8.9, PCIe Gen4 x16, no NVLink) and 2x ConnectX-7 at 200 Gb/s in RoCE mode; 2x AMD
// EPYC 9354 (32 cores, family 25 model 0x11). Per socket two PCIe switches of two GPUs each; NIC
// i shares the first switch of socket i. GPU traffic inside the node goes over PCIe P2P.
std::vector<Node> pcieBox() {
  NodeRecipe r;
  r.cpu = {"x86_64", "AuthenticAMD", "AMD EPYC 9354 32-Core Processor", 25, 0x11};
  r.numa = {numaNode(0, "0-31,64-95", 384 * kGiB), numaNode(1, "32-63,96-127", 384 * kGiB)};
  r.gpu.name = "NVIDIA L40S";
  r.gpu.ccMajor = 8;
  r.gpu.ccMinor = 9;
  r.gpu.smCount = 142;
  r.gpu.memoryBytes = 46068 * kMiB;
  r.gpu.pcie = {4, 16, 0};
  r.gpuBuses = {0x01, 0x02, 0x21, 0x22, 0x81, 0x82, 0xa1, 0xa2};
  r.nic.kind = NicKind::kRoce;
  r.nic.gbitPerSec = 200;
  r.nic.pcie = {5, 16, 0};
  r.nicPrefix = "mlx5_";
  r.nicBuses = {0x03, 0x83};
  for (int s = 0; s < 4; ++s) r.layout.switchParent.push_back(-1);
  for (int g = 0; g < 8; ++g) r.layout.gpus.push_back({g / 4, g / 2});
  r.layout.nics = {{0, 0}, {1, 2}};
  return {buildNode(r)};
}

// --- AWS p5.48xlarge ------------------------------------------------------------------------
// AWS EC2 P5 documentation: 8x H100 80GB (SXM5, NVSwitch, 900 GB/s bidirectional NVLink = 18 x
// 25 GB/s per direction); 3200 Gbps of EFA (v2) networking as 32 EFA devices of 100 Gb/s, four
// behind each GPU's PCIe switch; 2x AMD EPYC 7R13 (48 cores, family 25 model 0x01), 192 vCPUs,
// 2 TiB. Devices are named efa_0..efa_31 here (the instance shows rdmapXsY verbs names).
std::vector<Node> awsP5() {
  NodeRecipe r = hopperRecipe("NVIDIA H100 80GB HBM3", 81559 * kMiB);
  r.cpu = {"x86_64", "AuthenticAMD", "AMD EPYC 7R13 Processor", 25, 0x01};
  r.numa = {numaNode(0, "0-47,96-143", 1024 * kGiB), numaNode(1, "48-95,144-191", 1024 * kGiB)};
  r.nic.kind = NicKind::kEfa;
  r.nic.gbitPerSec = 100;
  r.nic.pcie = {4, 16, 0};
  r.nicPrefix = "efa_";
  r.nicBuses.clear();
  r.layout.nics.clear();
  for (int n = 0; n < 32; ++n) {
    r.nicBuses.push_back(r.gpuBuses[n / 4] + 1 + n % 4);
    r.layout.nics.push_back({n / 16, n / 4});
  }
  return {buildNode(r)};
}

// --- GB200 NVL72 rack -------------------------------------------------------------------------
// NVIDIA GB200 NVL72: one rack = 18 compute trays x (2 Grace CPUs + 4 Blackwell GPUs) = 72 GPUs
// in one NVLink domain (NVLink5, 18 links x 50 GB/s = 900 GB/s per direction per GPU, "1.8 TB/s"
// bidirectional, through 9 NVLink switch trays); 13.4 TB HBM3e per rack, i.e. 186 GB per GPU;
// Grace: 72 Arm Neoverse V2 cores. SM count 148 as commonly reported for the Blackwell die (not
// in NVIDIA's datasheet). Networking: one ConnectX-7 400 Gb/s InfiniBand per GPU. Each tray is a
// node (host); GPUs 0-1 and NICs 0-1 hang off Grace 0, the rest off Grace 1 (NODE / SYS).
std::vector<Node> gb200Rack(int rack) {
  NodeRecipe r;
  r.cpu = {"arm64", "NVIDIA", "NVIDIA Grace (Neoverse-V2)", 0, 0};
  r.numa = {numaNode(0, "0-71", 480 * kGiB), numaNode(1, "72-143", 480 * kGiB)};
  r.gpu.name = "NVIDIA GB200";
  r.gpu.ccMajor = 10;
  r.gpu.ccMinor = 0;
  r.gpu.smCount = 148;
  r.gpu.memoryBytes = 186000000000ull;
  r.gpu.pcie = {5, 16, 0};
  r.gpu.nvlinks = 18;
  r.gpu.nvswitchLinks = 18;
  r.gpu.nvlinkGBpsPerLink = 50;
  r.gpuBuses = {0x01, 0x02, 0x81, 0x82};
  r.nic.kind = NicKind::kInfiniband;
  r.nic.gbitPerSec = 400;
  r.nic.pcie = {5, 16, 0};
  r.nicPrefix = "mlx5_";
  r.nicBuses = {0x03, 0x04, 0x83, 0x84};
  for (int i = 0; i < 4; ++i) {
    r.layout.gpus.push_back({i / 2, -1});
    r.layout.nics.push_back({i / 2, -1});
  }
  std::vector<Node> trays;
  for (int t = 0; t < 18; ++t) {
    Node node = buildNode(r);
    node.nvlinkDomain = "gb200-nvl72-rack" + std::to_string(rack);
    trays.push_back(node);
  }
  return trays;
}

struct Preset {
  PresetInfo info;
  std::function<std::vector<Node>(int unit)> build;
};

const std::vector<Preset>& presets() {
  static const std::vector<Preset> list = {
      {{"dgx-h100", "8x H100 SXM5 80GB, NVLink4 18x25 GB/s via NVSwitch, 8x CX7 400 Gb/s IB",
        "node"},
       [](int) { return dgxH100(); }},
      {{"hgx-h200", "8x H200 141GB, NVLink4 18x25 GB/s via NVSwitch, 8x CX7 400 Gb/s IB", "node"},
       [](int) { return hgxH200(); }},
      {{"dgx-a100", "8x A100 SXM4 80GB, NVLink3 12x25 GB/s via NVSwitch, 8x CX6 200 Gb/s IB",
        "node"},
       [](int) { return dgxA100(); }},
      {{"pcie-8gpu-2nic", "8x L40S on PCIe Gen4 (no NVLink), 2x CX7 200 Gb/s RoCE", "node"},
       [](int) { return pcieBox(); }},
      {{"aws-p5", "8x H100 80GB, NVLink4 18x25 GB/s via NVSwitch, 32x EFA 100 Gb/s", "node"},
       [](int) { return awsP5(); }},
      {{"gb200-nvl72",
        "18 trays x 4 GB200 GPUs in one NVLink5 domain (18x50 GB/s), 1x CX7 400 Gb/s per GPU",
        "rack"},
       [](int unit) { return gb200Rack(unit); }},
  };
  return list;
}

}  // namespace

const std::vector<PresetInfo>& presetList() {
  static const std::vector<PresetInfo> infos = [] {
    std::vector<PresetInfo> list;
    for (const auto& preset : presets()) list.push_back(preset.info);
    return list;
  }();
  return infos;
}

Cluster makePreset(const std::string& name, int units) {
  const Preset* found = nullptr;
  for (const auto& preset : presets()) {
    if (preset.info.name == name) found = &preset;
  }
  if (found == nullptr) {
    std::string known;
    for (const auto& preset : presets()) known += (known.empty() ? "" : ", ") + preset.info.name;
    fail("unknown preset '", name, "' (known: ", known, ")");
  }
  if (units < 1 || units > 4096) {
    fail("preset ", name, ": --nodes ", units, " is out of range [1, 4096]");
  }
  Cluster cluster;
  cluster.name = name + (units > 1 ? " x" + std::to_string(units) : "");
  for (int unit = 0; unit < units; ++unit) {
    for (Node node : found->build(unit)) {
      int index = static_cast<int>(cluster.nodes.size());
      node.hostname = name + "-" + std::to_string(index);
      node.hostId = "preset:" + node.hostname;
      cluster.nodes.push_back(std::move(node));
    }
  }
  return cluster;
}

}  // namespace nccl_moe::topo
