// The probe from hwloc XML fixtures, plus the CUDA, NVML and sysfs layers fed with known data.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "topology/cuda_probe.h"
#include "topology/error.h"
#include "topology/hwloc_reader.h"
#include "topology/nvml_probe.h"
#include "topology/probe.h"
#include "topology/sysfs_probe.h"
#include "topology/validate.h"

namespace nccl_moe::topo {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream file(std::string(NCCL_MOE_TOPO_FIXTURES) + "/" + name);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

Node dgxLike() { return nodeFromHwlocXml(fixture("dgx_h100_like.xml"), "dgx_h100_like.xml"); }

TEST(TopoHwloc, DgxLikeMachine) {
  Node node = dgxLike();
  EXPECT_EQ(node.hostname, "dgx-h100-like");
  EXPECT_EQ(node.cpu.vendor, "GenuineIntel");
  EXPECT_EQ(node.cpu.familyId, 6);
  EXPECT_EQ(node.cpu.modelId, 143);
  ASSERT_EQ(node.numa.size(), 2u);
  EXPECT_EQ(node.numa[1].cpus, "2-3");
  EXPECT_EQ(node.numa[0].memoryBytes, 1ull << 40);
  ASSERT_EQ(node.gpus.size(), 8u);
  ASSERT_EQ(node.nics.size(), 8u);
  const char* buses[] = {"0000:1b:00.0", "0000:43:00.0", "0000:52:00.0", "0000:61:00.0",
                         "0000:9d:00.0", "0000:c3:00.0", "0000:d1:00.0", "0000:df:00.0"};
  for (int g = 0; g < 8; ++g) {
    SCOPED_TRACE(g);
    EXPECT_EQ(node.gpus[g].busId, buses[g]);
    EXPECT_EQ(node.gpus[g].index, g);
    EXPECT_EQ(node.gpus[g].numa, g / 4);
    EXPECT_EQ(node.gpus[g].cpuAffinity, g < 4 ? "0-1" : "2-3");
    EXPECT_NEAR(node.gpus[g].pcie.gbytesPerSec, 63.015, 1e-3);
    EXPECT_EQ(node.nics[g].name, "mlx5_" + std::to_string(g));
    EXPECT_EQ(node.nics[g].kind, NicKind::kInfiniband);
    EXPECT_EQ(node.nics[g].numa, g / 4);
    EXPECT_EQ(node.gpus[g].rail, g);
    for (int n = 0; n < 8; ++n) {
      PathClass expected = n == g ? PathClass::kPix : n / 4 == g / 4 ? PathClass::kNode : PathClass::kSys;
      EXPECT_EQ(node.gpuNicPaths[g][n], expected) << "NIC " << n;
    }
    for (int h = 0; h < 8; ++h) {
      if (h == g) continue;
      EXPECT_EQ(node.gpuPaths[g][h], h / 4 == g / 4 ? PathClass::kNode : PathClass::kSys) << "GPU " << h;
    }
  }
  EXPECT_EQ(node.nics[1].guid, "0x0c42a10300010000");
  EXPECT_EQ(node.nics[0].netdev, "ibp26s0");
  EXPECT_EQ(node.nics[0].busId, "0000:1a:00.0");
  Cluster cluster;
  cluster.nodes.push_back(node);
  EXPECT_TRUE(findProblems(cluster).empty()) << ::testing::PrintToString(findProblems(cluster));
}

TEST(TopoHwloc, PcieBoxCoversEveryPathClass) {
  Node node = nodeFromHwlocXml(fixture("pcie_box.xml"), "pcie_box.xml");
  ASSERT_EQ(node.gpus.size(), 8u);
  ASSERT_EQ(node.nics.size(), 3u);
  EXPECT_EQ(node.nics[0].name, "eno1");
  EXPECT_EQ(node.nics[0].kind, NicKind::kEthernet);
  EXPECT_EQ(node.nics[1].name, "mlx5_0");
  EXPECT_EQ(node.nics[1].kind, NicKind::kRoce);
  EXPECT_EQ(node.nics[2].kind, NicKind::kRoce);
  EXPECT_EQ(node.gpuPaths[0][1], PathClass::kPix);   // same switch
  EXPECT_EQ(node.gpuPaths[0][2], PathClass::kPhb);   // two root ports of one host bridge
  EXPECT_EQ(node.gpuPaths[4][6], PathClass::kPxb);   // sibling leaf switches under a top switch
  EXPECT_EQ(node.gpuPaths[0][4], PathClass::kSys);   // across sockets
  EXPECT_EQ(node.gpuNicPaths[0][0], PathClass::kNode);  // eno1: another host bridge, same NUMA
  EXPECT_EQ(node.gpuNicPaths[0][1], PathClass::kPix);
  EXPECT_EQ(node.gpuNicPaths[2][1], PathClass::kPhb);
  EXPECT_EQ(node.gpuNicPaths[6][2], PathClass::kPxb);
  // RDMA NICs win over the closer-or-equal plain Ethernet port; GPUs 0-3 share mlx5_0.
  for (int g = 0; g < 8; ++g) EXPECT_EQ(node.gpus[g].rail, g < 4 ? 1 : 2) << g;
  EXPECT_NEAR(networkGBpsPerGpu(node), 0.0, 1e-12);  // rates unknown without sysfs
}

TEST(TopoHwloc, ProbeOfAnXmlNeverTouchesThisMachine) {
  ProbeOptions options;
  options.hwlocXml = fixture("dgx_h100_like.xml");
  options.hwlocSource = "dgx_h100_like.xml";
  ProbeResult result = probeLocalNode(options);
  EXPECT_EQ(result.node.gpus.size(), 8u);
  EXPECT_EQ(result.node.hostname, "dgx-h100-like");
  EXPECT_TRUE(result.notes.empty()) << ::testing::PrintToString(result.notes);
}

TEST(TopoHwloc, MalformedXmlIsAnError) {
  EXPECT_THROW(nodeFromHwlocXml("<topology version=\"2.0\"><object type=", "broken.xml"), Error);
}

TEST(TopoCudaLayer, OrdersGpusByOrdinalAndFillsDetails) {
  Node node = dgxLike();
  CudaReport report;
  // CUDA_VISIBLE_DEVICES=4,0: ordinal 0 is the hwloc GPU at 9d, ordinal 1 the one at 1b.
  report.devices.push_back({0, "NVIDIA H100 80GB HBM3", "0000:9d:00.0", 9, 0, 132, 85520809984ull});
  report.devices.push_back({1, "NVIDIA H100 80GB HBM3", "0000:1b:00.0", 9, 0, 132, 85520809984ull});
  report.p2pPerfRank = {{0, 1}, {1, 0}};
  applyCudaDevices(node, report);
  ASSERT_EQ(node.gpus.size(), 2u);
  EXPECT_EQ(node.gpus[0].busId, "0000:9d:00.0");
  EXPECT_EQ(node.gpus[0].numa, 1);
  EXPECT_EQ(node.gpus[0].smCount, 132);
  EXPECT_EQ(node.gpus[0].rail, 4);
  EXPECT_EQ(node.gpus[1].rail, 0);
  EXPECT_EQ(node.gpuPaths[0][1], PathClass::kSys);
  EXPECT_EQ(node.gpuNicPaths[0][4], PathClass::kPix);
  EXPECT_EQ(node.p2pPerfRank[0][1], 1);
}

TEST(TopoNvmlLayer, SwitchLinksDirectLinksAndFabricDomain) {
  Node node = dgxLike();
  for (auto& gpu : node.gpus) {
    gpu.ccMajor = 9;
    gpu.ccMinor = 0;
  }
  NvmlReport report;
  for (const auto& gpu : node.gpus) report.gpus.push_back({gpu.busId, 18, 18, {}, "c0ffee/7"});
  report.gpus[0].activeLinks = 20;  // plus two direct links to GPU 1
  report.gpus[0].peerLinks["0000:43:00.0"] = 2;
  applyNvlinks(node, report);
  EXPECT_EQ(node.gpus[3].nvlinks, 18);
  EXPECT_DOUBLE_EQ(node.gpus[3].nvlinkGBps(), 450.0);
  EXPECT_EQ(node.nvlinks[2][5], 18);
  EXPECT_EQ(node.nvlinks[0][1], 20);
  EXPECT_EQ(node.nvlinks[1][0], 20);
  EXPECT_EQ(node.nvlinkDomain, "c0ffee/7");

  report.gpus[6].fabricDomain.clear();  // one GPU outside the fabric: no shared domain
  Node fresh = dgxLike();
  applyNvlinks(fresh, report);
  EXPECT_EQ(fresh.nvlinkDomain, "");
}

TEST(TopoNvmlLayer, QueryWithoutDriverSaysSo) {
  NvmlReport report = queryNvml({"0000:1b:00.0"});
  if (!report.gpus.empty()) GTEST_SKIP() << "this machine has NVML";
  EXPECT_NE(report.note.find("no NVLink data"), std::string::npos) << report.note;
}

class TopoSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("nccl-moe-sysfs-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& path, const std::string& text) {
    std::filesystem::path file = root_ / path;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << text << "\n";
  }
  std::filesystem::path root_;
};

TEST_F(TopoSysfs, RatesLinkLayersAndPcieLinks) {
  Node node = nodeFromHwlocXml(fixture("pcie_box.xml"), "pcie_box.xml");
  write("class/infiniband/mlx5_0/ports/1/rate", "200 Gb/sec (2X HDR)");
  write("class/infiniband/mlx5_0/ports/1/link_layer", "Ethernet");
  write("class/infiniband/mlx5_1/ports/1/rate", "400 Gb/sec (4X NDR)");
  write("class/infiniband/mlx5_1/ports/1/link_layer", "InfiniBand");
  write("class/net/eno1/speed", "1000");
  write("bus/pci/devices/0000:05:00.0/max_link_speed", "16.0 GT/s PCIe");
  write("bus/pci/devices/0000:05:00.0/max_link_width", "16");
  applySysfs(node, root_.string());
  EXPECT_DOUBLE_EQ(node.nics[0].gbitPerSec, 1.0);
  EXPECT_DOUBLE_EQ(node.nics[1].gbitPerSec, 200.0);
  EXPECT_EQ(node.nics[1].kind, NicKind::kRoce);
  EXPECT_DOUBLE_EQ(node.nics[2].gbitPerSec, 400.0);
  EXPECT_EQ(node.nics[2].kind, NicKind::kInfiniband);
  EXPECT_EQ(node.gpus[0].pcie.gen, 4);
  EXPECT_EQ(node.gpus[0].pcie.width, 16);
  EXPECT_NEAR(pcieBandwidthGBps(node.gpus[0].pcie), 31.5077, 1e-3);
  EXPECT_EQ(node.gpus[1].pcie.gen, 0);  // no sysfs entry: left as hwloc said
}

TEST(TopoHostIdentity, HonoursNcclHostId) {
  const char* saved = std::getenv("NCCL_HOSTID");
  std::string previous = saved != nullptr ? saved : "";
  ::setenv("NCCL_HOSTID", "virtual-node-3", 1);
  EXPECT_EQ(readHostIdentity().hostId, "virtual-node-3");
  ::unsetenv("NCCL_HOSTID");
  HostIdentity identity = readHostIdentity();
  EXPECT_FALSE(identity.hostname.empty());
  EXPECT_EQ(identity.hostId.rfind(identity.hostname + "/", 0), 0u);
  if (saved != nullptr) ::setenv("NCCL_HOSTID", previous.c_str(), 1);
}

}  // namespace
}  // namespace nccl_moe::topo
