// Presets: the documented numbers, replication, domains, rails.
#include <gtest/gtest.h>

#include "topology/error.h"
#include "topology/presets.h"
#include "topology/validate.h"

namespace nccl_moe::topo {
namespace {

struct Expected {
  const char* name;
  int gpusPerUnit;
  int nodesPerUnit;
  int nicsPerNode;
  int smVersion;
  int smCount;
  double nvlinkGBps;   // per GPU per direction
  double networkGBps;  // per GPU
  double pcieGBps;
  NicKind nicKind;
};

constexpr double kGen5x16 = 32.0 * 128 / 130 / 8 * 16;  // 63.0 GB/s
constexpr double kGen4x16 = 16.0 * 128 / 130 / 8 * 16;  // 31.5 GB/s

const Expected kExpected[] = {
    {"dgx-h100", 8, 1, 8, 90, 132, 18 * 25.0, 400 / 8.0, kGen5x16, NicKind::kInfiniband},
    {"hgx-h200", 8, 1, 8, 90, 132, 18 * 25.0, 400 / 8.0, kGen5x16, NicKind::kInfiniband},
    {"dgx-a100", 8, 1, 8, 80, 108, 12 * 25.0, 200 / 8.0, kGen4x16, NicKind::kInfiniband},
    {"pcie-8gpu-2nic", 8, 1, 2, 89, 142, 0, 2 * 200 / 8.0 / 8, kGen4x16, NicKind::kRoce},
    {"aws-p5", 8, 1, 32, 90, 132, 18 * 25.0, 32 * 100 / 8.0 / 8, kGen5x16, NicKind::kEfa},
    {"gb200-nvl72", 72, 18, 4, 100, 148, 18 * 50.0, 400 / 8.0, kGen5x16, NicKind::kInfiniband},
};

TEST(TopoPresets, DocumentedNumbers) {
  ASSERT_EQ(presetList().size(), std::size(kExpected));
  for (const auto& e : kExpected) {
    SCOPED_TRACE(e.name);
    Cluster cluster = makePreset(e.name, 3);
    EXPECT_EQ(cluster.gpuCount(), 3 * e.gpusPerUnit);
    ASSERT_EQ(cluster.nodes.size(), static_cast<size_t>(3 * e.nodesPerUnit));
    EXPECT_TRUE(findProblems(cluster).empty()) << ::testing::PrintToString(findProblems(cluster));
    for (const auto& node : cluster.nodes) {
      EXPECT_EQ(static_cast<int>(node.nics.size()), e.nicsPerNode);
      EXPECT_NEAR(nvlinkGBpsPerGpu(node), e.nvlinkGBps, 1e-9);
      EXPECT_NEAR(networkGBpsPerGpu(node), e.networkGBps, 1e-9);
      EXPECT_NEAR(pcieGBpsPerGpu(node), e.pcieGBps, 1e-6);
      EXPECT_EQ(node.gpus[0].smVersion(), e.smVersion);
      EXPECT_EQ(node.gpus[0].smCount, e.smCount);
      EXPECT_EQ(node.nics[0].kind, e.nicKind);
    }
  }
}

TEST(TopoPresets, NodesAreDistinctHostsAndDomainsFollowTheUnit) {
  Cluster dgx = makePreset("dgx-h100", 4);
  EXPECT_EQ(dgx.name, "dgx-h100 x4");
  EXPECT_EQ(dgx.nodes[3].hostname, "dgx-h100-3");
  EXPECT_EQ(nvlinkDomains(dgx).size(), 4u);

  Cluster racks = makePreset("gb200-nvl72", 2);
  std::vector<NvlinkDomain> domains = nvlinkDomains(racks);
  ASSERT_EQ(domains.size(), 2u);
  EXPECT_EQ(domains[0].gpuCount, 72);
  EXPECT_EQ(domains[1].nodes.front(), 18);
  EXPECT_EQ(racks.nodes[17].nvlinkDomain, "gb200-nvl72-rack0");
  EXPECT_EQ(racks.nodes[18].nvlinkDomain, "gb200-nvl72-rack1");
}

TEST(TopoPresets, RailsPairEachGpuWithItsClosestNic) {
  const Node dgx = makePreset("dgx-h100", 1).nodes[0];
  for (int g = 0; g < 8; ++g) {
    EXPECT_EQ(dgx.gpus[g].rail, g);
    EXPECT_EQ(dgx.gpuNicPaths[g][g], PathClass::kPix);
    EXPECT_EQ(dgx.gpus[g].numa, g / 4);
  }
  EXPECT_EQ(dgx.gpuNicPaths[0][1], PathClass::kNode);
  EXPECT_EQ(dgx.gpuNicPaths[0][4], PathClass::kSys);
  EXPECT_EQ(dgx.nvlinks[0][7], 18);

  const Node a100 = makePreset("dgx-a100", 1).nodes[0];
  EXPECT_EQ(a100.gpuPaths[0][1], PathClass::kPix);
  EXPECT_EQ(a100.gpuNicPaths[0][0], PathClass::kPxb);
  EXPECT_EQ(a100.gpus[0].numa, 3);
  EXPECT_EQ(a100.gpus[1].rail, 1);

  const Node box = makePreset("pcie-8gpu-2nic", 1).nodes[0];
  for (int g = 0; g < 8; ++g) EXPECT_EQ(box.gpus[g].rail, g / 4);
  EXPECT_EQ(box.nvlinks[0][1], 0);

  const Node p5 = makePreset("aws-p5", 1).nodes[0];
  for (int g = 0; g < 8; ++g) EXPECT_EQ(p5.gpus[g].rail, 4 * g);
}

TEST(TopoPresets, UnknownNameAndBadCountsAreErrors) {
  try {
    makePreset("dgx-h300", 1);
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()),
              "unknown preset 'dgx-h300' (known: dgx-h100, hgx-h200, dgx-a100, pcie-8gpu-2nic, aws-p5, gb200-nvl72)");
  }
  EXPECT_THROW(makePreset("dgx-h100", 0), Error);
}

}  // namespace
}  // namespace nccl_moe::topo
