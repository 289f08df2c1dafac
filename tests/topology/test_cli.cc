// nccl-moe-topo as users run it: exit codes, the key numbers of its output, and its messages.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "topology/json_io.h"

namespace nccl_moe::topo {
namespace {

struct CliResult {
  int status = -1;
  std::string out;  // stdout and stderr together
};

// stderr goes with stdout unless `stderrTo` redirects it elsewhere.
CliResult run(const std::string& arguments, const std::string& stderrTo = "&1") {
  std::string command = std::string(NCCL_MOE_TOPO_CLI) + " " + arguments + " 2>" + stderrTo;
  CliResult result;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe.get())) > 0) result.out.append(buffer, n);
  int raw = pclose(pipe.release());
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return result;
}

// stdout only, for JSON.
CliResult runJson(const std::string& arguments) {
  return run(arguments, "/dev/null");
}

std::string fixture(const std::string& name) { return std::string(NCCL_MOE_TOPO_FIXTURES) + "/" + name; }

class TopoCliFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("nccl-moe-cli-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(dir_ / name) << text; }
  std::filesystem::path dir_;
};

TEST(TopoCli, ProbeSucceedsOnThisMachineAndSaysWhatIsMissing) {
  CliResult result = run("probe");
  EXPECT_EQ(result.status, 0) << result.out;
  EXPECT_NE(result.out.find("Cluster: probe of"), std::string::npos) << result.out;
  CliResult json = runJson("probe --json");
  ASSERT_EQ(json.status, 0);
  Json parsed = Json::parse(json.out);
  EXPECT_EQ(parsed["schema"], "nccl-moe-cluster");
  EXPECT_EQ(parsed["nodes"].size(), 1u);
  if (parsed["nodes"][0]["gpus"].empty()) {
    EXPECT_NE(result.out.find("no GPU"), std::string::npos) << result.out;
  }
}

TEST(TopoCli, ProbeOfAnHwlocExport) {
  CliResult result = run("probe --hwloc " + fixture("dgx_h100_like.xml"));
  ASSERT_EQ(result.status, 0) << result.out;
  EXPECT_NE(result.out.find("GPU0  X     NODE  NODE  NODE  SYS"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("8 GPUs, 8 NICs"), std::string::npos);
}

TEST(TopoCli, MustShowPlanOnTwoDgxH100) {
  CliResult result = runJson("plan --preset dgx-h100 --nodes 2 --experts 256 --topk 8 --tokens 4096 --hidden 7168 --fp8 --json");
  ASSERT_EQ(result.status, 0) << result.out;
  Json plan = Json::parse(result.out);
  // By hand: P(token needs the other node) = 1 - C(128,8)/C(256,8); P(a rank is hit) = 1 -
  // C(240,8)/C(256,8); rows are 7168 + 56*4 = 7392 bytes (FP8) and 14336 bytes (BF16 combine).
  double remoteNode = 1, missRank = 1;
  for (int i = 0; i < 8; ++i) {
    remoteNode *= (128.0 - i) / (256.0 - i);
    missRank *= (240.0 - i) / (256.0 - i);
  }
  remoteNode = 1 - remoteNode;
  double pRank = 1 - missRank;
  EXPECT_EQ(plan["shape"]["dispatch_row_bytes"], 7392);
  EXPECT_EQ(plan["shape"]["combine_row_bytes"], 14336);
  EXPECT_EQ(plan["cluster"]["gpus"], 16);
  EXPECT_EQ(plan["cluster"]["nvlink_domains"], 2);
  EXPECT_DOUBLE_EQ(plan["cluster"]["intra_gbytes_per_s"].get<double>(), 450.0);
  EXPECT_DOUBLE_EQ(plan["cluster"]["network_gbytes_per_s"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(plan["per_token"]["remote_expert_fraction"].get<double>(), 0.5);
  EXPECT_NEAR(plan["per_token"]["remote_domains"].get<double>(), remoteNode, 1e-12);
  ASSERT_EQ(plan["phases"].size(), 4u);
  const Json& dedup = plan["phases"][0];
  EXPECT_EQ(dedup["phase"], "dispatch");
  EXPECT_EQ(dedup["strategy"], "node-dedup");
  EXPECT_NEAR(dedup["network"]["bytes"].get<double>(), 4096 * remoteNode * 7392, 1e-3);
  EXPECT_NEAR(dedup["network"]["seconds"].get<double>(), 4096 * remoteNode * 7392 / 50e9, 1e-12);
  EXPECT_NEAR(dedup["intra"]["bytes"].get<double>(), 4096 * 14 * pRank * 7392, 1e-3);
  EXPECT_NEAR(dedup["intra"]["seconds"].get<double>(), 4096 * 14 * pRank * 7392 / 450e9, 1e-12);
  EXPECT_EQ(dedup["bottleneck"], "network");
  const Json& flat = plan["phases"][1];
  EXPECT_EQ(flat["strategy"], "flat");
  EXPECT_NEAR(flat["network"]["bytes"].get<double>(), 4096 * 8 * pRank * 7392, 1e-3);
  const Json& combine = plan["phases"][2];
  EXPECT_EQ(combine["phase"], "combine");
  EXPECT_NEAR(combine["network"]["seconds"].get<double>(), 4096 * remoteNode * 14336 / 50e9, 1e-12);
  EXPECT_EQ(plan["bottleneck"], "network");
}

TEST(TopoCli, PlanTableNamesTheBottleneck) {
  CliResult result = run("plan --preset dgx-h100 --nodes 2 --experts 256 --topk 8 --tokens 4096 --hidden 7168 --fp8");
  ASSERT_EQ(result.status, 0) << result.out;
  EXPECT_NE(result.out.find("dispatch  node-dedup  172.82         384.0      30.17           603.4"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("Bottleneck (node-dedup dispatch + combine): network"), std::string::npos);
}

TEST(TopoCli, PlanPrintsTheChosenPlan) {
  const std::string shape = " --experts 256 --topk 8 --hidden 7168 --tokens 4096";
  CliResult text = run("plan --preset dgx-h100 --nodes 4" + shape);
  ASSERT_EQ(text.status, 0) << text.out;
  EXPECT_NE(text.out.find("Chosen plan: two-hop: 4 domains x 8 ranks, network in 4 chunks of 1024 rows per call "
                          "(advised 73 rows, 3 in flight), SMs "
                          "19 network + 5 NVLink, network staging 731.1 MiB/rank"),
            std::string::npos)
      << text.out;
  CliResult json = runJson("plan --preset dgx-h100 --nodes 4" + shape + " --json");
  ASSERT_EQ(json.status, 0) << json.out;
  Json plan = Json::parse(json.out);
  const Json& chosen = plan["chosen_plan"];
  EXPECT_EQ(chosen["kind"], "two-hop");
  EXPECT_EQ(chosen["ranks_per_domain"], 8);
  EXPECT_EQ(chosen["domains"], 4);
  EXPECT_EQ(chosen["chunk_rows"], 73);  // 1 MiB / 14336-byte BF16 rows
  // The library's two-hop regions: meta slots, dispatch send + receive, combine send + receive.
  EXPECT_EQ(chosen["network_staging_bytes"],
            3ll * 787712 + 2ll * 3 * 4096 * 14336 + 3ll * 4096 * 14368 + 4ll * 4096 * 14368);
  // The network bytes are the cost model's node-dedup numbers (phases 0 and 2).
  ASSERT_EQ(plan["phases"][0]["strategy"], "node-dedup");
  EXPECT_EQ(chosen["dispatch"]["network_bytes"], plan["phases"][0]["network"]["bytes"]);
  EXPECT_EQ(chosen["dispatch"]["nvlink_bytes"], plan["phases"][0]["intra"]["bytes"]);
  EXPECT_EQ(chosen["combine"]["network_bytes"], plan["phases"][2]["network"]["bytes"]);
  for (const char* key : {"chunks_in_flight", "chunks_per_call", "rows_per_call_chunk", "sms_for_network_staging", "sms_for_forwarding", "nvlink_gbytes_per_s",
                          "network_gbytes_per_s", "dispatch_row_bytes", "combine_row_bytes", "reason", "description"}) {
    EXPECT_TRUE(chosen.contains(key)) << key;
  }

  Json one = Json::parse(runJson("plan --preset dgx-h100" + shape + " --json").out);
  EXPECT_EQ(one["chosen_plan"]["kind"], "direct");
  Json rack =
      Json::parse(runJson("plan --preset gb200-nvl72 --experts 288 --topk 8 --hidden 7168 --tokens 4096 --json").out);
  EXPECT_EQ(rack["chosen_plan"]["kind"], "direct");
  EXPECT_EQ(rack["chosen_plan"]["ranks_per_domain"], 72);
  Json pcie =
      Json::parse(runJson("plan --preset pcie-8gpu-2nic --experts 64 --topk 8 --hidden 7168 --tokens 4096 --json").out);
  EXPECT_EQ(pcie["chosen_plan"]["kind"], "nccl-only");
  Json split = Json::parse(runJson("plan --preset dgx-h100 --domain-size 2" + shape + " --json").out);
  EXPECT_EQ(split["chosen_plan"]["kind"], "two-hop");
  EXPECT_EQ(split["chosen_plan"]["domains"], 4);
  CliResult refused = run("plan --preset dgx-h100 --domain-size 3" + shape);
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.out.find("NCCL_MOE_DOMAIN_SIZE=3 does not divide the 8 ranks"), std::string::npos) << refused.out;
}

TEST(TopoCli, PlanReportsTheLowLatencyMode) {
  // docs/low_latency.md's examples: EP16 (two domains of 8) FP8 and EP8 BF16, N = 128, top-8 of 256.
  const std::string shape = " --experts 256 --topk 8 --hidden 7168 --tokens 4096 --ll-tokens 128";
  CliResult json = runJson("plan --preset dgx-h100 --nodes 2 --fp8" + shape + " --json");
  ASSERT_EQ(json.status, 0) << json.out;
  const Json ll = Json::parse(json.out)["low_latency"];
  EXPECT_EQ(ll["domains"], 2);
  EXPECT_EQ(ll["ranks_per_domain"], 8);
  EXPECT_EQ(ll["buffer_bytes_per_rank"], 100511744);
  EXPECT_NEAR(ll["dedup_factor"].get<double>(), 4.01, 0.01);
  EXPECT_EQ(ll["dispatch_wire_bytes"], 128ll * (80 + 7168 + 224));
  EXPECT_EQ(ll["combine_wire_bytes"], 128ll * (32 + 14336));
  CliResult text = run("plan --preset dgx-h100 --nodes 2 --fp8" + shape);
  ASSERT_EQ(text.status, 0) << text.out;
  EXPECT_NE(text.out.find("Low-latency mode (lowLatencyMaxTokens 128, FP8 dispatch, two hops)"), std::string::npos)
      << text.out;
  const Json one = Json::parse(runJson("plan --preset dgx-h100" + shape + " --json").out)["low_latency"];
  EXPECT_EQ(one["domains"], 1);
  EXPECT_EQ(one["buffer_bytes_per_rank"], 58887168);
  EXPECT_EQ(one["dispatch_wire_bytes"], 0);
  CliResult bad = run("plan --preset dgx-h100 --experts 256 --topk 8 --hidden 7168 --tokens 4096 --ll-tokens 2000");
  EXPECT_NE(bad.status, 0);
}

TEST(TopoCli, ShowPresetsKeyNumbers) {
  CliResult h100 = run("show --preset dgx-h100");
  ASSERT_EQ(h100.status, 0) << h100.out;
  EXPECT_NE(h100.out.find("GPU0  X     NV18  NV18"), std::string::npos) << h100.out;
  EXPECT_NE(h100.out.find("18 x 25.0 = 450.0 GB/s (NVSwitch)"), std::string::npos);
  EXPECT_NE(h100.out.find("per GPU: NVLink 450.0 GB/s, network 50.0 GB/s, PCIe 63.0 GB/s"), std::string::npos);
  CliResult racks = run("show --preset gb200-nvl72 --nodes 2");
  ASSERT_EQ(racks.status, 0) << racks.out;
  EXPECT_NE(racks.out.find("36 nodes, 144 GPUs, 144 NICs; 2 NVLink domains (2 x 72 GPUs)"), std::string::npos)
      << racks.out;
  EXPECT_NE(racks.out.find("per GPU: NVLink 900.0 GB/s, network 50.0 GB/s"), std::string::npos);
  CliResult p5 = runJson("show --preset aws-p5 --json");
  Json cluster = Json::parse(p5.out);
  EXPECT_EQ(cluster["nodes"][0]["nics"].size(), 32u);
  EXPECT_EQ(cluster["nodes"][0]["nics"][5]["kind"], "efa");
  EXPECT_EQ(cluster["nodes"][0]["gpus"][1]["rail"], 4);
  CliResult list = run("presets");
  EXPECT_EQ(list.status, 0);
  EXPECT_NE(list.out.find("pcie-8gpu-2nic"), std::string::npos);
}

TEST_F(TopoCliFiles, SavedFilesShowValidateAndPlanLikeThePreset) {
  ASSERT_EQ(run("show --preset dgx-a100 --nodes 2 --json -o " + path("a100.json")).status, 0);
  ASSERT_EQ(run("show --preset dgx-a100 --nodes 2 --xml --output " + path("a100.xml")).status, 0);
  CliResult json = run("validate " + path("a100.json"));
  EXPECT_EQ(json.status, 0) << json.out;
  EXPECT_NE(json.out.find("valid: 2 nodes, 16 GPUs, 16 NICs, 2 NVLink domain(s)"), std::string::npos) << json.out;
  CliResult xml = run("validate " + path("a100.xml"));
  EXPECT_EQ(xml.status, 0) << xml.out;
  const std::string shape = " --experts 256 --topk 8 --tokens 1024 --hidden 4096 --json";
  Json fromPreset = Json::parse(runJson("plan --preset dgx-a100 --nodes 2" + shape).out);
  Json fromJson = Json::parse(runJson("plan " + path("a100.json") + shape).out);
  Json fromXml = Json::parse(runJson("plan " + path("a100.xml") + shape).out);
  EXPECT_EQ(fromJson["phases"], fromPreset["phases"]);
  EXPECT_EQ(fromXml["phases"], fromPreset["phases"]);
  // A one-node file replicates with --nodes.
  ASSERT_EQ(run("show --preset dgx-a100 --json -o " + path("one.json")).status, 0);
  Json replicated = Json::parse(runJson("plan " + path("one.json") + " --nodes 2" + shape).out);
  EXPECT_EQ(replicated["phases"], fromPreset["phases"]);
}

TEST_F(TopoCliFiles, InvalidFilesAreRejectedWithTheirPlace) {
  write("typo.json", R"({"schema": "nccl-moe-cluster", "version": 1, "nodes": [{"gpus": [{"sm_cnt": 1}]}]})");
  CliResult typo = run("validate " + path("typo.json"));
  EXPECT_EQ(typo.status, 1);
  EXPECT_NE(typo.out.find("typo.json: nodes[0].gpus[0].sm_cnt: unknown key"), std::string::npos) << typo.out;

  write("rail.json", R"({"schema": "nccl-moe-cluster", "version": 1, "nodes": [{"gpus": [{"rail": 3}]}]})");
  CliResult rail = run("validate " + path("rail.json"));
  EXPECT_EQ(rail.status, 1);
  EXPECT_NE(rail.out.find("invalid: 1 problem"), std::string::npos) << rail.out;
  EXPECT_NE(rail.out.find("nodes[0].gpus[0].rail: 3 is not a NIC index"), std::string::npos) << rail.out;

  write("broken.xml", "<system version=\"1\">\n  <cpu numaid=\"0\">\n</system>\n");
  CliResult broken = run("show " + path("broken.xml"));
  EXPECT_EQ(broken.status, 1);
  EXPECT_NE(broken.out.find("broken.xml:3: invalid XML: </system> closes <cpu> opened on line 2"), std::string::npos)
      << broken.out;

  CliResult missing = run("show " + path("absent.json"));
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.out.find("absent.json: cannot open"), std::string::npos) << missing.out;

  write("bad.trace", "0: 1 2 3 4 5 6 7 8\n1: 1 2\n");
  CliResult trace = run("plan --preset dgx-h100 --experts 256 --topk 8 --hidden 7168 --trace " + path("bad.trace"));
  EXPECT_EQ(trace.status, 1);
  EXPECT_NE(trace.out.find("bad.trace:2: 2 expert ids, expected top-k = 8"), std::string::npos) << trace.out;
}

// Hostile files: every command ends in exit 1 with a short "error:" message (never a crash,
// never "internal error"), and validate accepts exactly what show and plan can use.
class TopoCliHostileFiles : public TopoCliFiles {
 protected:
  static std::string repeat(const std::string& text, size_t count) {
    std::string out;
    for (size_t i = 0; i < count; ++i) out += text;
    return out;
  }

  // validate, show (each format) and plan on `name`; each must fail like an input error with a
  // message holding `expected`. Returns the validate output.
  std::string expectEveryCommandRejects(const std::string& name, const std::string& expected) {
    const std::string file = path(name);
    std::string validateOut;
    for (const std::string& command : {"validate " + file, "show " + file, "show --json " + file, "show --xml " + file,
                                       "plan " + file + " --experts 8 --topk 2 --tokens 4 --hidden 8 --json"}) {
      CliResult result = run(command);
      EXPECT_EQ(result.status, 1) << command << "\n" << result.out.substr(0, 2000);
      EXPECT_NE(result.out.find(expected), std::string::npos) << command << "\n" << result.out.substr(0, 2000);
      EXPECT_EQ(result.out.find("internal error"), std::string::npos) << command << "\n" << result.out.substr(0, 2000);
      EXPECT_LT(result.out.size(), 1000u) << command << ": the message quotes too much";
      if (validateOut.empty()) validateOut = result.out;
    }
    return validateOut;
  }
};

TEST_F(TopoCliHostileFiles, DeeplyNestedXmlIsAnErrorNamingTheLimit) {
  // The issue's file (13k levels, 90 KB) and one far past any stack: the parser recursed per level.
  for (size_t depth : {13000, 300000}) {
    write("deep.xml", "<system version=\"1\">\n" + repeat("<a>", depth) + repeat("</a>", depth) + "</system>\n");
    expectEveryCommandRejects("deep.xml", "deep.xml:2: invalid XML: <a> is nested deeper than 256 levels of elements");
  }
}

TEST_F(TopoCliHostileFiles, DeeplyNestedJsonIsAnErrorNamingTheLimit) {
  // An error message used to dump() this value recursively.
  const size_t depth = 300000;
  write("deep.json", R"({"schema": "nccl-moe-cluster", "version": 1, "nodes": [{"gpus": [], "numa": [{"id": 0, "memory_bytes": )" +
                         repeat("[", depth) + repeat("]", depth) + "}]}]}");
  expectEveryCommandRejects("deep.json", "deep.json:1:163: invalid JSON: nested deeper than 64 levels of arrays and objects");
}

TEST_F(TopoCliHostileFiles, NumbersBeyondTheirFieldAreInputErrors) {
  write("huge.json", R"({"schema": "nccl-moe-cluster", "version": 1e400, "nodes": []})");
  expectEveryCommandRejects("huge.json", "huge.json: invalid JSON: [json.exception.out_of_range.406] number overflow parsing '1e400'");
  write("long.json", R"({"schema": "nccl-moe-cluster", "version": 1)" + std::string(50000, '0') + "e400}");
  expectEveryCommandRejects("long.json", "number overflow parsing '10000");
  // 2^64 - 1 wrapped to -1, a valid "unknown" NUMA node.
  write("wrap.json", R"({"schema": "nccl-moe-cluster", "version": 1, "nodes": [{"gpus": [{"numa": 18446744073709551615}]}]})");
  expectEveryCommandRejects("wrap.json", "wrap.json: nodes[0].gpus[0].numa: 18446744073709551615 is out of range [-1, 65536]");
  write("wrap.xml", "<system version=\"1\">\n<cpu numaid=\"4294967296\"/>\n</system>\n");
  expectEveryCommandRejects("wrap.xml", "wrap.xml:2: <cpu numaid=\"4294967296\">: out of range [-1, 65536]");
}

TEST_F(TopoCliHostileFiles, BytesThatAreNotUtf8ReachJsonOutputReplaced) {
  // nlohmann's dump() threw type_error 316 on them: "internal error".
  write("bytes.xml", "<system version=\"1\"><cpu numaid=\"0\" arch=\"\xff\xfe\"/></system>\n");
  CliResult json = runJson("show --json " + path("bytes.xml"));
  ASSERT_EQ(json.status, 0) << json.out;
  EXPECT_EQ(Json::parse(json.out)["nodes"][0]["cpu"]["arch"], "\xef\xbf\xbd\xef\xbf\xbd");  // U+FFFD twice
  EXPECT_EQ(run("validate " + path("bytes.xml")).status, 0);
  // A file name is text in the plan's JSON too.
  ASSERT_EQ(run("show --preset dgx-h100 --xml -o " + path("h100\xff.xml")).status, 0);
  CliResult plan = runJson("plan " + path("h100\xff.xml") + " --experts 256 --topk 8 --tokens 16 --hidden 64 --json");
  ASSERT_EQ(plan.status, 0) << plan.out;
  EXPECT_EQ(Json::parse(plan.out)["cluster"]["name"].get<std::string>().find("h100\xef\xbf\xbd.xml"), path("").size());
}

TEST_F(TopoCliHostileFiles, OutOfRangeNicSpeedIsRejectedWithTheRange) {
  write("speed.json", R"({"schema": "nccl-moe-cluster", "version": 1, "nodes": [{"gpus": [{}], "nics": [{"name": "x", "gbit_per_s": 1e300}]}]})");
  expectEveryCommandRejects("speed.json", "speed.json: nodes[0].nics[0].gbit_per_s: 1e+300 is out of range [0, 1000000]");
  // From NCCL XML the rate arrives in range of NCCL's int; the model's limit still applies.
  write("speed.xml", "<system version=\"1\"><cpu numaid=\"0\"><pci busid=\"0000:01:00.0\" class=\"0x020700\">"
                     "<nic><net name=\"mlx5_0\" dev=\"0\" speed=\"2147483647\"/></nic></pci></cpu></system>\n");
  std::string out = expectEveryCommandRejects("speed.xml", "nodes[0].nics[0].gbit_per_s: 2147483.647 is out of range [0, 1000000]");
  EXPECT_NE(out.find("speed.xml: invalid: 1 problem"), std::string::npos) << out;
  // In range, the XML written for NCCL carries it as a positive int of Mb/s.
  write("fast.json", R"({"schema": "nccl-moe-cluster", "version": 1, "nodes": [{"gpus": [], "nics": [{"name": "x", "gbit_per_s": 1000000}]}]})");
  CliResult xml = runJson("show --xml " + path("fast.json"));
  ASSERT_EQ(xml.status, 0) << xml.out;
  EXPECT_NE(xml.out.find("speed=\"1000000000\""), std::string::npos) << xml.out;
}

TEST_F(TopoCliHostileFiles, ValidateRejectsWhatShowRejectsWithTheSameMessage) {
  // validate passed "banana"; show --xml then failed on it.
  write("banana.json", R"({"schema": "nccl-moe-cluster", "version": 1, "nodes": [{"gpus": [{}], "numa": [{"id": 0, "cpus": "banana"}]}]})");
  const std::string problem = "nodes[0].numa[0].cpus: CPU list 'banana': 'banana' is not a CPU number";
  std::string out = expectEveryCommandRejects("banana.json", problem);
  EXPECT_NE(out.find("banana.json: invalid: 1 problem\n  " + problem), std::string::npos) << out;
  write("affinity.json", R"({"schema": "nccl-moe-cluster", "version": 1, "nodes": [{"gpus": [{"cpu_affinity": "0-)" +
                             repeat("9", 5000) + R"("}]}]})");
  expectEveryCommandRejects("affinity.json", "nodes[0].gpus[0].cpu_affinity: CPU list '0-99999");
}

TEST_F(TopoCliHostileFiles, ValidatePassesExactlyWhatShowCanUse) {
  // One edit each away from a valid preset: validate and every show format must agree.
  ASSERT_EQ(run("show --preset dgx-h100 --json -o " + path("base.json")).status, 0);
  std::ifstream in(path("base.json"));
  Json base = Json::parse(in);
  std::vector<std::pair<std::string, Json>> edits{
      {"/nodes/0/numa/0/cpus", "0-7,x"},        {"/nodes/0/numa/0/cpus", "0-65535"},
      {"/nodes/0/numa/0/cpus", "65536"},        {"/nodes/0/gpus/0/cpu_affinity", "3-1"},
      {"/nodes/0/nics/0/cpu_affinity", ","},    {"/nodes/0/nics/0/gbit_per_s", 1e6},
      {"/nodes/0/nics/0/gbit_per_s", 1000001},  {"/nodes/0/gpus/0/pcie/gbytes_per_s", 1e7},
      {"/nodes/0/gpus/0/nvlink/gbytes_per_s_per_link", 1e300}};
  for (const auto& [pointer, value] : edits) {
    Json edited = base;
    edited[Json::json_pointer(pointer)] = value;
    write("edited.json", edited.dump());
    CliResult validate = run("validate " + path("edited.json"));
    ASSERT_TRUE(validate.status == 0 || validate.status == 1) << pointer << "\n" << validate.out;
    for (const char* format : {"", " --json", " --xml"}) {
      CliResult show = run("show" + std::string(format) + " " + path("edited.json"));
      EXPECT_EQ(show.status, validate.status) << pointer << " = " << value << format << "\n" << validate.out << show.out;
      EXPECT_EQ(show.out.find("internal error"), std::string::npos) << show.out;
    }
  }
}

TEST(TopoCli, UsageErrorsExit2AndPointToHelp) {
  CliResult none = run("");
  EXPECT_EQ(none.status, 2);
  CliResult unknown = run("frobnicate");
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.out.find("unknown command 'frobnicate'"), std::string::npos);
  CliResult option = run("show --preset dgx-h100 --nodez 2");
  EXPECT_EQ(option.status, 2);
  EXPECT_NE(option.out.find("nccl-moe-topo show: unknown option '--nodez' (see nccl-moe-topo show --help)"),
            std::string::npos)
      << option.out;
  CliResult both = run("show x.json --preset dgx-h100");
  EXPECT_EQ(both.status, 2);
  EXPECT_NE(both.out.find("give either a FILE or --preset NAME"), std::string::npos);
  CliResult shape = run("plan --preset dgx-h100 --topk 8 --tokens 1 --hidden 1");
  EXPECT_EQ(shape.status, 2);
  EXPECT_NE(shape.out.find("--experts is required"), std::string::npos);
  CliResult number = run("plan --preset dgx-h100 --experts many --topk 8 --tokens 1 --hidden 1");
  EXPECT_EQ(number.status, 2);
  EXPECT_NE(number.out.find("--experts 'many' is not a whole number"), std::string::npos);
  CliResult preset = run("show --preset dgx-h300");
  EXPECT_EQ(preset.status, 1);
  EXPECT_NE(preset.out.find("unknown preset 'dgx-h300'"), std::string::npos);
}

TEST(TopoCli, EveryCommandHasHelp) {
  for (const char* command : {"probe", "show", "plan", "validate", "presets"}) {
    CliResult help = run(std::string(command) + " --help");
    EXPECT_EQ(help.status, 0) << command;
    EXPECT_EQ(help.out.rfind(std::string("usage: nccl-moe-topo ") + command, 0), 0u) << help.out;
  }
  CliResult top = run("--help");
  EXPECT_EQ(top.status, 0);
  EXPECT_NE(top.out.find("commands:"), std::string::npos);
}

}  // namespace
}  // namespace nccl_moe::topo
