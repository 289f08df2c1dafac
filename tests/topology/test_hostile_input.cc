// Hostile input to the topology library: deep nesting, numbers beyond their fields, bytes that
// are not UTF-8, huge quoted values. Each must end in a topo::Error with a short message (or,
// for output, in sanitised text), never in a crash or another exception type.
#include <gtest/gtest.h>

#include "error_of.h"

#include <cstdint>
#include <string>

#include "topology/assembly.h"
#include "topology/cpuset.h"
#include "topology/error.h"
#include "topology/json_io.h"
#include "topology/nccl_xml.h"
#include "topology/presets.h"
#include "topology/validate.h"
#include "topology/xml_document.h"

namespace nccl_moe::topo {
namespace {

using topo::test::errorOf;

std::string repeat(const std::string& text, size_t count) {
  std::string out;
  out.reserve(text.size() * count);
  for (size_t i = 0; i < count; ++i) out += text;
  return out;
}

std::string nestedXml(size_t depth) {
  return "<system version=\"1\">" + repeat("<e>", depth - 1) + repeat("</e>", depth - 1) + "</system>";
}

std::string nestedJson(size_t depth) { return repeat("[", depth) + repeat("]", depth); }

// A cluster JSON whose first node carries `nodeFields` (JSON members, without braces).
std::string clusterWith(const std::string& nodeFields) {
  return R"({"schema": "nccl-moe-cluster", "version": 1, "nodes": [{"gpus": [], )" + nodeFields + "}]}";
}

// Quoted input is cut short: a message stays readable whatever the file holds.
constexpr size_t kShortMessage = 400;

TEST(TopoHostileXml, NestingIsLimitedWithTheLimitAndTheLine) {
  EXPECT_NO_THROW(parseXml(nestedXml(kMaxXmlDepth), "ok.xml"));
  EXPECT_EQ(errorOf([] { parseXml(nestedXml(kMaxXmlDepth + 1), "deep.xml"); }),
            "deep.xml:1: invalid XML: <e> is nested deeper than 256 levels of elements");
  // Far past any stack: the parser used to recurse once per level and crash.
  std::string deep = "<system version=\"1\">\n<cpu numaid=\"0\">\n" + repeat("<pci busid=\"x\">", 1000000);
  EXPECT_EQ(errorOf([&] { parseNcclXml(deep, "deep.xml"); }),
            "deep.xml:3: invalid XML: <pci> is nested deeper than 256 levels of elements");
}

TEST(TopoHostileXml, MessagesQuoteNamesAndValuesShort) {
  std::string name(100000, 'n');
  std::string message = errorOf([&] { parseXml("<" + name + ">", "n.xml"); });
  EXPECT_NE(message.find("unterminated <nnnn"), std::string::npos) << message.substr(0, 200);
  EXPECT_NE(message.find("... (100000 bytes)>"), std::string::npos) << message.substr(0, 200);
  EXPECT_LT(message.size(), kShortMessage);
  message = errorOf([&] { parseXml("<a v=\"&" + std::string(100000, 'x') + ";\"/>", "e.xml"); });
  EXPECT_NE(message.find("unknown entity in '&xxx"), std::string::npos) << message.substr(0, 200);
  EXPECT_LT(message.size(), kShortMessage);
}

TEST(TopoHostileXml, IntegersBeyondTheirFieldAreRejectedNotWrapped) {
  // Read as long long and cast to int, these became NUMA 0 and one NVLink.
  EXPECT_EQ(errorOf([] { parseNcclXml("<system version=\"1\"><cpu numaid=\"4294967296\"/></system>", "n.xml"); }),
            "n.xml:1: <cpu numaid=\"4294967296\">: out of range [-1, 65536]");
  const std::string gpuWith = R"(<system version="1"><cpu numaid="0"><pci busid="0000:01:00.0" class="0x030200">)";
  EXPECT_EQ(errorOf([&] {
              parseNcclXml(gpuWith + R"(<gpu dev="0" sm="90"><nvlink target="0000:02:00.0" count="4294967297" tclass="0x030200"/></gpu></pci></cpu></system>)",
                           "c.xml");
            }),
            "c.xml:1: <nvlink count=\"4294967297\">: out of range [0, 64]");
  // strtoll saturates instead of failing.
  EXPECT_EQ(errorOf([&] {
              parseNcclXml(gpuWith + R"(<gpu dev="99999999999999999999" sm="90"/></pci></cpu></system>)", "d.xml");
            }),
            "d.xml:1: <gpu dev=\"99999999999999999999\">: out of range [0, 2147483647]");
}

TEST(TopoHostileJson, NestingIsLimitedWithTheLimitAndThePosition) {
  EXPECT_NO_THROW(parseJsonText(nestedJson(kMaxJsonDepth), "ok.json"));
  EXPECT_EQ(errorOf([] { parseJsonText("\n  " + nestedJson(kMaxJsonDepth + 1), "deep.json"); }),
            "deep.json:2:67: invalid JSON: nested deeper than 64 levels of arrays and objects");
  // Brackets inside strings (escaped quotes included) are text, not nesting.
  std::string inString = "[\"\\\"" + repeat("[", 1000) + "\"]";
  EXPECT_NO_THROW(parseJsonText(inString, "s.json"));
  // The crash of the issue: a deep value where a message used to dump() it recursively.
  std::string deep = clusterWith(R"("numa": [{"id": 0, "memory_bytes": )" + nestedJson(1000000) + "}]");
  EXPECT_NE(errorOf([&] { parseClusterJson(deep, "deep.json"); }).find("nested deeper than 64 levels"),
            std::string::npos);
  EXPECT_EQ(errorOf([] { parseClusterJson(clusterWith(R"("numa": [{"id": 0, "memory_bytes": [[1]]}])"), "m.json"); }),
            "m.json: nodes[0].numa[0].memory_bytes: expected a non-negative integer, got array");
}

TEST(TopoHostileJson, NumberOverflowIsAnInputError) {
  // nlohmann throws out_of_range 406 here, which used to escape as an "internal error".
  std::string message = errorOf([] { parseClusterJson(R"({"schema": "nccl-moe-cluster", "version": 1e400})", "big.json"); });
  EXPECT_EQ(message.rfind("big.json: invalid JSON: ", 0), 0u) << message;
  EXPECT_NE(message.find("number overflow parsing '1e400'"), std::string::npos) << message;
  // The token is quoted by nlohmann: a huge one must not make a huge message.
  message = errorOf([] { parseJsonText("[1" + std::string(100000, '0') + "e400]", "long.json"); });
  EXPECT_NE(message.find("number overflow"), std::string::npos) << message.substr(0, 200);
  EXPECT_LT(message.size(), kShortMessage);
  message = errorOf([] { parseJsonText("[\"" + std::string(100000, 'x') + "\n\"]", "ctl.json"); });
  EXPECT_EQ(message.rfind("ctl.json:1:", 0), 0u) << message.substr(0, 200);
  EXPECT_LT(message.size(), kShortMessage);
}

TEST(TopoHostileJson, IntegersTooBigForTheFieldDoNotWrap) {
  // 2^64 - 1 is stored unsigned; get<int64_t>() made it -1, which numa and p2p_perf_rank accept.
  EXPECT_EQ(errorOf([] {
              parseClusterJson(R"({"schema": "nccl-moe-cluster", "version": 1, "nodes": [{"gpus": [{"numa": 18446744073709551615}]}]})",
                               "n.json");
            }),
            "n.json: nodes[0].gpus[0].numa: 18446744073709551615 is out of range [-1, 65536]");
  EXPECT_EQ(errorOf([] {
              parseClusterJson(R"({"schema": "nccl-moe-cluster", "version": 1, "nodes": [{"gpus": [{}],
                                   "p2p_perf_rank": [[18446744073709551615]]}]})",
                               "p.json");
            }),
            "p.json: nodes[0].p2p_perf_rank[0][0]: expected an integer in [-1, 1024], got 18446744073709551615");
  EXPECT_EQ(errorOf([] {
              parseClusterJson(R"({"schema": "nccl-moe-cluster", "version": 4294967297, "nodes": []})", "v.json");
            }),
            "v.json: version: 4294967297 is out of range [0, 2147483647]");
}

TEST(TopoHostileJson, MessagesQuoteValuesShort) {
  std::string key(100000, 'k');
  std::string message = errorOf([&] { parseClusterJson(clusterWith("\"" + key + "\": 1"), "k.json"); });
  EXPECT_NE(message.find("unknown key"), std::string::npos) << message.substr(0, 200);
  EXPECT_LT(message.size(), kShortMessage);
  message = errorOf([&] {
    parseClusterJson(clusterWith(R"("nics": [{"name": "x", "kind": ")" + key + "\"}]"), "kind.json");
  });
  EXPECT_NE(message.find("is not one of infiniband"), std::string::npos) << message.substr(0, 200);
  EXPECT_LT(message.size(), kShortMessage);
}

TEST(TopoHostileRates, OutOfRangeRatesAreRejectedWithTheRange) {
  EXPECT_EQ(errorOf([] { parseClusterJson(clusterWith(R"("nics": [{"name": "x", "gbit_per_s": 1e300}])"), "s.json"); }),
            "s.json: nodes[0].nics[0].gbit_per_s: 1e+300 is out of range [0, 1000000]");
  EXPECT_EQ(errorOf([] {
              parseClusterJson(R"({"schema": "nccl-moe-cluster", "version": 1, "nodes": [{"gpus": [{"pcie": {"gbytes_per_s": 1e300}}]}]})",
                               "p.json");
            }),
            "p.json: nodes[0].gpus[0].pcie.gbytes_per_s: 1e+300 is out of range [0, 1000000]");
  // Models from other sources (NCCL XML, hwloc, code) meet the same limits in findProblems.
  Cluster cluster = makePreset("dgx-h100", 1);
  cluster.nodes[0].nics[1].gbitPerSec = 1e300;
  cluster.nodes[0].gpus[2].nvlinkGBpsPerLink = 1e300;
  std::vector<std::string> problems = findProblems(cluster);
  ASSERT_EQ(problems.size(), 2u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], "nodes[0].gpus[2].nvlink.gbytes_per_s_per_link: 1e+300 is out of range [0, 1000000]");
  EXPECT_EQ(problems[1], "nodes[0].nics[1].gbit_per_s: 1e+300 is out of range [0, 1000000]");
}

TEST(TopoHostileRates, NcclXmlSpeedNeverWrapsNegative) {
  Cluster cluster = makePreset("dgx-h100", 1);
  EXPECT_NE(toNcclXmlText(cluster).find("speed=\"400000\""), std::string::npos);
  // The conversion itself refuses what NCCL's int of Mb/s cannot hold (it used to write
  // speed="-9223372036854775808").
  cluster.nodes[0].nics[0].gbitPerSec = 1e300;
  EXPECT_EQ(errorOf([&] { toNcclXmlText(cluster); }),
            "NIC 'mlx5_0': 1e+300 Gb/s does not fit NCCL's speed attribute (0 to 2147483647 Mb/s)");
  // The largest rate the model takes still fits.
  cluster.nodes[0].nics[0].gbitPerSec = kMaxNicGbitPerSec;
  EXPECT_NE(toNcclXmlText(cluster).find("speed=\"1000000000\""), std::string::npos);
  // An NCCL file at the top of NCCL's range imports, and findProblems names the field.
  Cluster imported = parseNcclXml(R"(<system version="1"><cpu numaid="0"><pci busid="0000:01:00.0" class="0x020700">
    <nic><net name="mlx5_0" dev="0" speed="2147483647"/></nic></pci></cpu></system>)", "fast.xml");
  EXPECT_EQ(findProblems(imported),
            std::vector<std::string>{"nodes[0].nics[0].gbit_per_s: 2147483.647 is out of range [0, 1000000]"});
}

// A bonded NIC (NCCL sums its ports' widths) is wider than any slot: validate, the JSON reader and
// the NCCL XML import share one limit, so what validates is written as JSON that reads back (the
// NCCL XML fuzzer found a x52 NIC that validated but whose JSON the reader refused).
TEST(TopoHostileRates, PcieWidthsHaveOneLimitEverywhere) {
  Cluster cluster = makePreset("dgx-h100", 1);
  cluster.nodes[0].nics[0].pcie.width = 64;
  ASSERT_TRUE(findProblems(cluster).empty()) << ::testing::PrintToString(findProblems(cluster));
  const std::string json = toJsonText(cluster);
  EXPECT_EQ(toJsonText(parseClusterJson(json, "bonded.json")), json);
  cluster.nodes[0].nics[0].pcie.width = kMaxPcieWidth + 1;
  const std::vector<std::string> problems = findProblems(cluster);
  ASSERT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
  EXPECT_NE(problems[0].find("nodes[0].nics[0].pcie: gen"), std::string::npos) << problems[0];
  EXPECT_NE(problems[0].find("width 0..256"), std::string::npos) << problems[0];
  EXPECT_NE(errorOf([] {
              parseNcclXml(R"(<system version="1"><cpu numaid="0"><pci busid="0000:01:00.0" class="0x020700" link_width="300">
    <nic><net name="mlx5_0" dev="0" speed="400000"/></nic></pci></cpu></system>)", "wide.xml");
            }).find("300"),
            std::string::npos);
}

TEST(TopoHostileCpuLists, FindProblemsParsesEveryCpuList) {
  // The NCCL XML export parses these; a list that cannot parse must not pass validation.
  Cluster cluster = makePreset("dgx-h100", 1);
  cluster.nodes[0].numa[0].cpus = "banana";
  cluster.nodes[0].gpus[1].cpuAffinity = "0-";
  cluster.nodes[0].nics[3].cpuAffinity = "5-2";
  std::vector<std::string> problems = findProblems(cluster);
  ASSERT_EQ(problems.size(), 3u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], "nodes[0].numa[0].cpus: CPU list 'banana': 'banana' is not a CPU number");
  EXPECT_EQ(problems[1], "nodes[0].gpus[1].cpu_affinity: CPU list '0-': '' is not a CPU number");
  EXPECT_EQ(problems[2], "nodes[0].nics[3].cpu_affinity: CPU list '5-2': range '5-2' runs backwards");
  // What findProblems accepts, the export can write.
  cluster = makePreset("dgx-h100", 1);
  EXPECT_TRUE(findProblems(cluster).empty());
  EXPECT_NO_THROW(toNcclXmlText(cluster));
}

TEST(TopoHostileCpuLists, HugeListsStayCheap) {
  // Each range used to be expanded before deduplication: this was 3.3 billion entries.
  std::string list = repeat("0-65535,", 50000) + "7";
  std::vector<int> cpus = parseCpuList(list);
  EXPECT_EQ(cpus.size(), 65536u);
  EXPECT_EQ(formatCpuList(cpus), "0-65535");
  std::string message = errorOf([&] { parseCpuList(repeat("0-3,", 50000) + "x"); });
  EXPECT_NE(message.find("'x' is not a CPU number"), std::string::npos) << message.substr(0, 200);
  EXPECT_LT(message.size(), kShortMessage);
  // A mask setting CPUs that a CPU list could not name again.
  message = errorOf([] { cpuMaskToList("00000001" + repeat(",00000000", 2048)); });
  EXPECT_NE(message.find("sets CPUs beyond 65535"), std::string::npos) << message;
  EXPECT_EQ(cpuMaskToList("00000000" + repeat(",00000000", 4096) + ",00000003"), "0-1");
}

TEST(TopoHostileUtf8, JsonOutputReplacesBytesThatAreNotUtf8) {
  // XML text and hwloc strings are bytes; nlohmann's dump() threw type_error 316 on them.
  Cluster cluster = parseNcclXml("<system version=\"1\"><cpu numaid=\"0\" arch=\"x\xff\xfe\"/></system>", "u.xml");
  cluster.name = "file\xc3.xml";
  std::string text;
  ASSERT_NO_THROW(text = toJsonText(cluster));
  Cluster back = parseClusterJson(text, "back.json");
  EXPECT_EQ(back.nodes[0].cpu.arch, "x\xef\xbf\xbd\xef\xbf\xbd");  // U+FFFD twice
  EXPECT_EQ(back.name, "file\xef\xbf\xbd.xml");
  EXPECT_NO_THROW(fingerprint(cluster));
  EXPECT_EQ(dumpJson(Json("ok")), "\"ok\"");
}

TEST(TopoHostileAssembly, RankProbeFieldsAreCheckedWithoutWrapping) {
  RankProbe probe;
  probe.rank = 0;
  probe.node = makePreset("dgx-h100", 1).nodes[0];
  Json blob = Json::parse(serializeRankProbe(probe));
  blob["rank"] = 4294967296ull;  // get<int>() made this rank 0
  EXPECT_EQ(errorOf([&] { parseRankProbe(blob.dump(), "rank 0"); }),
            "rank 0: rank: expected a non-negative integer, got 4294967296");
  blob["rank"] = 0;
  blob["version"] = Json::array({Json::array({Json::array({1})})});
  EXPECT_EQ(errorOf([&] { parseRankProbe(blob.dump(), "rank 0"); }),
            "rank 0: version: array is not supported (this build reads 1)");
}

TEST(TopoHostileMessages, ExcerptCutsLongInput) {
  EXPECT_EQ(excerpt("short"), "short");
  EXPECT_EQ(excerpt(std::string(100, 'a'), 4), "aaaa... (100 bytes)");
  EXPECT_EQ(numberText(1e6), "1000000");
  EXPECT_EQ(numberText(1e300), "1e+300");
  EXPECT_EQ(numberText(0.5), "0.5");
}

}  // namespace
}  // namespace nccl_moe::topo
