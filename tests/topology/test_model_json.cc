// Cluster JSON: round trips, strict parsing with located messages, consistency checks, CPU sets.
#include <gtest/gtest.h>

#include "error_of.h"

#include "topology/cpuset.h"
#include "topology/error.h"
#include "topology/json_io.h"
#include "topology/presets.h"
#include "topology/validate.h"

namespace nccl_moe::topo {
namespace {

using topo::test::errorOf;

Json minimalCluster() {
  return Json::parse(R"({
    "schema": "nccl-moe-cluster", "version": 1, "name": "tiny",
    "nodes": [{
      "host_id": "h0",
      "gpus": [{"name": "G", "compute_capability": "9.0", "sm_count": 132,
                "nvlink": {"links": 18, "switch_links": 18, "gbytes_per_s_per_link": 25}},
               {"name": "G", "compute_capability": "9.0", "sm_count": 132,
                "nvlink": {"links": 18, "switch_links": 18, "gbytes_per_s_per_link": 25}}],
      "nics": [{"name": "mlx5_0", "kind": "infiniband", "gbit_per_s": 400}]
    }]})");
}

TEST(TopoJson, EveryPresetRoundTripsExactly) {
  for (const auto& preset : presetList()) {
    Cluster cluster = makePreset(preset.name, 2);
    std::string text = toJsonText(cluster);
    Cluster back = parseClusterJson(text, preset.name);
    EXPECT_EQ(back, cluster) << preset.name;
    EXPECT_EQ(toJsonText(back), text) << preset.name;
    EXPECT_TRUE(findProblems(back).empty()) << preset.name;
  }
}

TEST(TopoJson, HandWrittenNodeGetsDerivedFields) {
  Cluster cluster = clusterFromJson(minimalCluster(), "tiny.json");
  ASSERT_EQ(cluster.nodes.size(), 1u);
  const Node& node = cluster.nodes[0];
  EXPECT_EQ(node.nvlinks[0][1], 18);  // both ends on NVSwitch: min(18, 18)
  EXPECT_EQ(node.gpuPaths[0][1], PathClass::kSys);
  EXPECT_EQ(node.gpus[0].rail, 0);
  EXPECT_EQ(node.gpus[1].rail, 0);
  EXPECT_EQ(node.gpus[1].index, 1);
  EXPECT_DOUBLE_EQ(nvlinkGBpsPerGpu(node), 450.0);
  EXPECT_DOUBLE_EQ(networkGBpsPerGpu(node), 25.0);  // one 400 Gb/s NIC shared by two GPUs
  EXPECT_TRUE(findProblems(cluster).empty());
}

TEST(TopoJson, UnknownKeyIsRejectedWithItsPath) {
  Json json = minimalCluster();
  json["nodes"][0]["gpus"][1]["nvlink"]["lniks"] = 3;
  EXPECT_EQ(errorOf([&] { clusterFromJson(json, "c.json"); }), "c.json: nodes[0].gpus[1].nvlink.lniks: unknown key");
}

TEST(TopoJson, WrongTypesAndValuesNameTheField) {
  Json json = minimalCluster();
  json["nodes"][0]["gpus"][0]["sm_count"] = "132";
  EXPECT_EQ(errorOf([&] { clusterFromJson(json, "c.json"); }),
            "c.json: nodes[0].gpus[0].sm_count: expected an integer, got string");
  json = minimalCluster();
  json["nodes"][0]["nics"][0]["kind"] = "infiniband-ish";
  EXPECT_NE(errorOf([&] { clusterFromJson(json, "c.json"); })
                .find("nodes[0].nics[0].kind: 'infiniband-ish' is not one of"),
            std::string::npos);
  json = minimalCluster();
  json["nodes"][0]["gpus"][0]["compute_capability"] = "nine";
  EXPECT_NE(errorOf([&] { clusterFromJson(json, "c.json"); }).find("compute_capability: 'nine'"), std::string::npos);
  json = minimalCluster();
  json["nodes"][0]["nics"][0]["gbit_per_s"] = -1;
  EXPECT_NE(errorOf([&] { clusterFromJson(json, "c.json"); }).find("gbit_per_s: -1 is out of range [0, 1000000]"), std::string::npos);
}

TEST(TopoJson, SchemaAndVersionAreChecked) {
  Json json = minimalCluster();
  json["version"] = 2;
  EXPECT_EQ(errorOf([&] { clusterFromJson(json, "c.json"); }),
            "c.json: version: schema version 2 is not supported (this build reads 1)");
  json = minimalCluster();
  json.erase("schema");
  EXPECT_EQ(errorOf([&] { clusterFromJson(json, "c.json"); }), "c.json: schema: is required");
}

TEST(TopoJson, MatrixShapeAndCellsAreChecked) {
  Json json = minimalCluster();
  json["nodes"][0]["gpu_paths"] = Json::parse(R"([["X", "PIX"]])");
  EXPECT_EQ(errorOf([&] { clusterFromJson(json, "c.json"); }),
            "c.json: nodes[0].gpu_paths: expected 2 rows (one per GPU), got 1");
  json["nodes"][0]["gpu_paths"] = Json::parse(R"([["X", "PIX"], ["PIX", "PIX"]])");
  EXPECT_EQ(errorOf([&] { clusterFromJson(json, "c.json"); }),
            "c.json: nodes[0].gpu_paths[1][1]: the diagonal must be \"X\", got 'PIX'");
  json["nodes"][0]["gpu_paths"] = Json::parse(R"([["X", "NV4"], ["NV4", "X"]])");
  EXPECT_NE(errorOf([&] { clusterFromJson(json, "c.json"); }).find("gpu_paths[0][1]: 'NV4' is not one of"),
            std::string::npos);
}

TEST(TopoJson, SyntaxErrorsCarryLineAndColumn) {
  std::string text = "{\n  \"schema\": \"nccl-moe-cluster\",\n  \"version\": 1,,\n}";
  std::string message = errorOf([&] { parseClusterJson(text, "broken.json"); });
  EXPECT_EQ(message.rfind("broken.json:3:", 0), 0u) << message;
  EXPECT_NE(message.find("invalid JSON"), std::string::npos);
}

TEST(TopoValidation, InconsistenciesAreAllListed) {
  Cluster cluster = makePreset("dgx-h100", 2);
  cluster.nodes[1].hostId = cluster.nodes[0].hostId;
  cluster.nodes[0].gpus[2].rail = 9;
  cluster.nodes[0].nvlinks[0][1] = 5;
  cluster.nodes[1].gpus[0].busId = "0000:1B:00.0";
  std::vector<std::string> problems = findProblems(cluster);
  ASSERT_EQ(problems.size(), 5u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], "nodes[0].gpus[2].rail: 9 is not a NIC index (node has 8 NICs; -1 means none)");
  EXPECT_EQ(problems[1], "nodes[0].nvlinks[0][1]: 5 differs from [1][0] 18");
  EXPECT_EQ(problems[2], "nodes[0].nvlinks[1][0]: 18 differs from [0][1] 5");
  EXPECT_EQ(problems[3], "nodes[1].host_id: 'preset:dgx-h100-0' appears on an earlier node");
  EXPECT_EQ(problems[4], "nodes[1].gpus[0].bus_id: '0000:1B:00.0' is not a PCI bus id like 0000:1b:00.0");
  EXPECT_NE(errorOf([&] { requireValid(cluster, "x.json"); }).find("x.json: 5 problems"), std::string::npos);
}

TEST(TopoValidation, BusIdFormat) {
  EXPECT_TRUE(isPciBusId("0000:1b:00.0"));
  EXPECT_FALSE(isPciBusId("0000:1B:00.0"));
  EXPECT_FALSE(isPciBusId("00000000:1b:00.0"));
  EXPECT_FALSE(isPciBusId("0000-1b:00.0"));
  EXPECT_EQ(normalizePciBusId("00000000:1B:00.0"), "0000:1b:00.0");
}

TEST(TopoValidation, NvlinkDomainNeedsSwitchLinks) {
  Cluster cluster = makePreset("pcie-8gpu-2nic", 1);
  cluster.nodes[0].nvlinkDomain = "rack";
  std::vector<std::string> problems = findProblems(cluster);
  ASSERT_EQ(problems.size(), 8u);
  EXPECT_EQ(problems[0], "nodes[0].gpus[0]: node is in NVLink domain 'rack' but the GPU has no NVSwitch links");
}

TEST(TopoCpuSets, ListsAndMasksConvertBothWays) {
  EXPECT_EQ(formatCpuList(parseCpuList("0-3,8,9,10,2")), "0-3,8-10");
  EXPECT_EQ(cpuListToMask("0-55,112-167"), "000000ff,ffffffff,ffff0000,00000000,00ffffff,ffffffff");
  EXPECT_EQ(cpuMaskToList("000000ff,ffffffff,ffff0000,00000000,00ffffff,ffffffff"), "0-55,112-167");
  EXPECT_EQ(cpuMaskToList("00000000"), "");
  EXPECT_EQ(cpuListToMask(""), "00000000");
  EXPECT_NE(errorOf([] { parseCpuList("3-1"); }).find("runs backwards"), std::string::npos);
  EXPECT_NE(errorOf([] { parseCpuList("0,,1"); }).find("is not a CPU number"), std::string::npos);
  EXPECT_NE(errorOf([] { cpuMaskToList("xyz"); }).find("not a 32-bit hex word"), std::string::npos);
}

}  // namespace
}  // namespace nccl_moe::topo
