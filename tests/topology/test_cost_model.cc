// The speed-of-light cost model against hand-computed cases. Expected values are derived here
// from first principles (binomial coefficients via lgamma, row counts by hand), not from the
// implementation's formulas.
#include <gtest/gtest.h>

#include "error_of.h"

#include <cmath>
#include <sstream>

#include "plan/cost_model.h"
#include "topology/error.h"
#include "topology/json_io.h"
#include "topology/presets.h"

namespace nccl_moe::plan {
namespace {

using topo::Cluster;
using topo::makePreset;

// C(n, k) / C(m, k) through log-gamma.
double binomialRatio(int n, int m, int k) {
  auto logChoose = [](int a, int b) { return std::lgamma(a + 1.0) - std::lgamma(b + 1.0) - std::lgamma(a - b + 1.0); };
  return std::exp(logChoose(n, k) - logChoose(m, k));
}

const PhaseCost& phase(const CostReport& report, const std::string& name, const std::string& strategy) {
  for (const auto& p : report.phases) {
    if (p.phase == name && p.strategy == strategy) return p;
  }
  throw std::runtime_error("no phase " + name + "/" + strategy);
}

using topo::test::errorOf;

CostShape deepseekShape() {
  CostShape shape;
  shape.experts = 256;
  shape.topk = 8;
  shape.tokensPerRank = 4096;
  shape.hidden = 7168;
  shape.fp8Dispatch = true;
  return shape;
}

TEST(TopoCostModel, RowBytes) {
  CostShape shape = deepseekShape();
  EXPECT_EQ(dispatchRowBytes(shape), 7168 + 4 * 56);  // E4M3 + one fp32 scale per 128 channels
  EXPECT_EQ(combineRowBytes(shape), 7168 * 2);
  shape.hidden = 100;
  EXPECT_EQ(dispatchRowBytes(shape), 100 + 4);  // a partial block still has a scale
  shape.fp8Dispatch = false;
  EXPECT_EQ(dispatchRowBytes(shape), 200);
}

TEST(TopoCostModel, Ep16OnTwoDgxH100UniformTop8Of256) {
  CostReport report = estimateCost(makePreset("dgx-h100", 2), deepseekShape(), RoutingModel{});
  const double k = 8, tokens = 4096, fp8Row = 7392, bf16Row = 14336;
  // Half of the experts live on the other node: half the (token, expert) pairs cross nodes.
  EXPECT_DOUBLE_EQ(report.perToken.remoteExpertPairs / report.perToken.expertPairs, 0.5);
  // A token needs the other node unless all 8 experts are among this node's 128.
  const double remoteNodes = 1 - binomialRatio(128, 256, 8);
  // A given rank (16 experts) is hit unless all 8 experts avoid it.
  const double pRank = 1 - binomialRatio(240, 256, 8);
  EXPECT_NEAR(report.perToken.remoteDomains, remoteNodes, 1e-9);
  EXPECT_NEAR(report.perToken.remoteRanks, 8 * pRank, 1e-9);
  EXPECT_NEAR(report.perToken.localRanks, 7 * pRank, 1e-9);
  EXPECT_NEAR(report.perToken.forwardedRows, 7 * pRank, 1e-9);
  EXPECT_NEAR(remoteNodes, 0.99651, 1e-5);
  EXPECT_NEAR(8 * pRank, 3.26164, 1e-5);
  EXPECT_DOUBLE_EQ(report.perToken.expertPairs, k);

  const PhaseCost& dedup = phase(report, "dispatch", "node-dedup");
  EXPECT_NEAR(dedup.network.bytes(), tokens * remoteNodes * fp8Row, 1e-3);
  EXPECT_NEAR(dedup.network.seconds, tokens * remoteNodes * fp8Row / 50e9, 1e-12);
  EXPECT_NEAR(dedup.intra.bytes(), tokens * (7 * pRank + 7 * pRank) * fp8Row, 1e-3);
  EXPECT_NEAR(dedup.intra.seconds, tokens * 14 * pRank * fp8Row / 450e9, 1e-12);
  EXPECT_EQ(dedup.bottleneck, "network");
  EXPECT_NEAR(dedup.seconds * 1e6, 603.44, 0.01);

  const PhaseCost& flat = phase(report, "dispatch", "flat");
  EXPECT_NEAR(flat.network.bytes(), tokens * 8 * pRank * fp8Row, 1e-3);
  EXPECT_NEAR(flat.intra.bytes(), tokens * 7 * pRank * fp8Row, 1e-3);
  // Dedup sends 3.27x fewer bytes over the network than flat all-to-all.
  EXPECT_NEAR(flat.network.bytes() / dedup.network.bytes(), 8 * pRank / remoteNodes, 1e-9);

  const PhaseCost& combine = phase(report, "combine", "node-dedup");
  EXPECT_NEAR(combine.network.bytes(), tokens * remoteNodes * bf16Row, 1e-3);
  EXPECT_NEAR(combine.network.seconds, tokens * remoteNodes * bf16Row / 50e9, 1e-12);
  EXPECT_EQ(report.bottleneck, "network");
  EXPECT_EQ(report.domains, 2);
  EXPECT_EQ(report.intraLinkName, "NVLink");
}

TEST(TopoCostModel, MonteCarloAgreesWithClosedForm) {
  RoutingModel sampled;
  sampled.monteCarlo = true;
  sampled.seed = 7;
  sampled.sampleTokensPerRank = 1024;
  CostReport exact = estimateCost(makePreset("dgx-h100", 2), deepseekShape(), RoutingModel{});
  CostReport mc = estimateCost(makePreset("dgx-h100", 2), deepseekShape(), sampled);
  EXPECT_NEAR(mc.perToken.remoteDomains, exact.perToken.remoteDomains, 0.01);
  EXPECT_NEAR(mc.perToken.remoteRanks, exact.perToken.remoteRanks, 0.03);
  EXPECT_NEAR(mc.perToken.remoteExpertPairs, 4.0, 0.05);
  // Per-GPU maxima sit a little above the mean; within a few percent at this sample size.
  double ratio = phase(mc, "dispatch", "flat").network.bytes() / phase(exact, "dispatch", "flat").network.bytes();
  EXPECT_GT(ratio, 0.99);
  EXPECT_LT(ratio, 1.05);
  CostReport again = estimateCost(makePreset("dgx-h100", 2), deepseekShape(), sampled);
  EXPECT_EQ(again.perToken.remoteRanks, mc.perToken.remoteRanks);  // seeded: reproducible
}

TEST(TopoCostModel, OneNodeNeedsNoNetwork) {
  CostShape shape = deepseekShape();
  CostReport report = estimateCost(makePreset("dgx-h100", 1), shape, RoutingModel{});
  const double pRank = 1 - binomialRatio(224, 256, 8);  // 32 experts per rank at EP8
  for (const auto& p : report.phases) {
    EXPECT_EQ(p.network.bytes(), 0) << p.phase << " " << p.strategy;
    EXPECT_EQ(p.bottleneck, "NVLink");
  }
  EXPECT_NEAR(phase(report, "dispatch", "flat").intra.bytes(), 4096 * 7 * pRank * 7392, 1e-3);
  EXPECT_EQ(report.bottleneck, "NVLink");
}

TEST(TopoCostModel, Nvl72RacksAreNvlinkDomains) {
  CostShape shape = deepseekShape();
  shape.experts = 288;  // a multiple of 144 GPUs
  CostReport one = estimateCost(makePreset("gb200-nvl72", 1), shape, RoutingModel{});
  EXPECT_EQ(one.domains, 1);
  EXPECT_EQ(phase(one, "dispatch", "node-dedup").network.bytes(), 0);
  CostReport two = estimateCost(makePreset("gb200-nvl72", 2), shape, RoutingModel{});
  EXPECT_EQ(two.domains, 2);
  EXPECT_EQ(two.largestDomainGpus, 72);
  const double remoteRack = 1 - binomialRatio(144, 288, 8);
  EXPECT_NEAR(two.perToken.remoteDomains, remoteRack, 1e-9);
  EXPECT_NEAR(phase(two, "dispatch", "node-dedup").network.seconds, 4096 * remoteRack * 7392 / 50e9, 1e-12);
  EXPECT_DOUBLE_EQ(phase(two, "dispatch", "node-dedup").intra.gbytesPerSec, 900.0);
}

TEST(TopoCostModel, PcieBoxUsesPcieInsideTheNode) {
  CostShape shape = deepseekShape();
  shape.experts = 64;
  CostReport report = estimateCost(makePreset("pcie-8gpu-2nic", 2), shape, RoutingModel{});
  EXPECT_EQ(report.intraLinkName, "PCIe");
  EXPECT_NEAR(phase(report, "dispatch", "flat").intra.gbytesPerSec, 16.0 * 128 / 130 / 8 * 16, 1e-9);
  EXPECT_NEAR(phase(report, "dispatch", "flat").network.gbytesPerSec, 2 * 200 / 8.0 / 8, 1e-12);
}

// Two nodes of two GPUs, 8 experts (2 per rank), top-2, and five tokens counted by hand.
Cluster tinyCluster() {
  return topo::parseClusterJson(R"({"schema": "nccl-moe-cluster", "version": 1, "name": "tiny", "nodes": [
      {"host_id": "a", "gpus": [
         {"nvlink": {"links": 18, "switch_links": 18, "gbytes_per_s_per_link": 25}},
         {"nvlink": {"links": 18, "switch_links": 18, "gbytes_per_s_per_link": 25}}],
       "nics": [{"name": "n0", "kind": "roce", "gbit_per_s": 100}]},
      {"host_id": "b", "gpus": [
         {"nvlink": {"links": 18, "switch_links": 18, "gbytes_per_s_per_link": 25}},
         {"nvlink": {"links": 18, "switch_links": 18, "gbytes_per_s_per_link": 25}}],
       "nics": [{"name": "n0", "kind": "roce", "gbit_per_s": 100}]}]})",
                                "tiny.json");
}

constexpr const char* kTinyTrace =
    "# rank: experts (rank r owns experts 2r and 2r+1)\n"
    "0: 0 1\n"    // both on rank 0 itself: no traffic
    "0: 2 4\n"    // rank 1 (local) and rank 2 (remote; rank 2 is also the relay)
    "\n"
    "1: 6 7\n"    // rank 3 twice: one row
    "1: 4 6\n"    // ranks 2 and 3: flat sends 2 rows; dedup sends 1 to relay rank 3, which forwards 1
    "2: 0 7\n";   // rank 0 (remote, relay) and rank 3 (local)

TEST(TopoCostModel, TraceCountedByHand) {
  CostShape shape;
  shape.experts = 8;
  shape.topk = 2;
  shape.hidden = 128;  // bf16: 256 bytes per row both ways
  RoutingModel routing;
  routing.kind = RoutingKind::kTrace;
  std::istringstream in(kTinyTrace);
  routing.trace = parseRoutingTrace(in, "tiny.trace");
  routing.traceSource = "tiny.trace";
  ASSERT_EQ(routing.trace.size(), 5u);
  EXPECT_EQ(routing.trace[2].line, 5);
  CostReport report = estimateCost(tinyCluster(), shape, routing);
  const double row = 256;
  EXPECT_DOUBLE_EQ(report.perToken.remoteExpertPairs, 6.0 / 5);
  EXPECT_DOUBLE_EQ(report.perToken.ranks, 8.0 / 5);
  EXPECT_DOUBLE_EQ(report.perToken.remoteRanks, 5.0 / 5);
  EXPECT_DOUBLE_EQ(report.perToken.remoteDomains, 4.0 / 5);
  EXPECT_DOUBLE_EQ(report.perToken.forwardedRows, 1.0 / 5);
  EXPECT_EQ(report.perToken.tokens, 5);

  // flat network: rank 1 sends 3 rows (6/7 to rank 3 once, 4 to rank 2, 6 to rank 3); ranks 2
  // and 3 receive 2 each.
  const PhaseCost& flat = phase(report, "dispatch", "flat");
  EXPECT_DOUBLE_EQ(flat.network.bytesSent, 3 * row);
  EXPECT_DOUBLE_EQ(flat.network.bytesReceived, 2 * row);
  EXPECT_DOUBLE_EQ(flat.intra.bytesSent, 1 * row);
  EXPECT_DOUBLE_EQ(flat.network.gbytesPerSec, 100 / 8.0 / 2);
  EXPECT_DOUBLE_EQ(flat.network.seconds, 3 * row / 6.25e9);
  // node-dedup network: rank 1 sends 2 rows, both to relay rank 3.
  const PhaseCost& dedup = phase(report, "dispatch", "node-dedup");
  EXPECT_DOUBLE_EQ(dedup.network.bytesSent, 2 * row);
  EXPECT_DOUBLE_EQ(dedup.network.bytesReceived, 2 * row);
  EXPECT_DOUBLE_EQ(dedup.intra.bytesSent, 1 * row);
  EXPECT_DOUBLE_EQ(dedup.intra.bytesReceived, 1 * row);
  // Combine runs the same rows backwards.
  const PhaseCost& back = phase(report, "combine", "flat");
  EXPECT_DOUBLE_EQ(back.network.bytesSent, 2 * row);
  EXPECT_DOUBLE_EQ(back.network.bytesReceived, 3 * row);
}

TEST(TopoCostModel, TraceErrorsNameFileAndLine) {
  auto parse = [](const std::string& text) {
    std::istringstream in(text);
    return parseRoutingTrace(in, "t.trace");
  };
  EXPECT_EQ(errorOf([&] { parse("0: 1 2\nzero: 1 2\n"); }), "t.trace:2: 'zero' is not a rank number");
  EXPECT_EQ(errorOf([&] { parse("0 1 2\n"); }), "t.trace:1: expected '<rank>: <expert ids>'");
  EXPECT_EQ(errorOf([&] { parse("0: 1 x\n"); }), "t.trace:1: 'x' is not an expert id");
  EXPECT_EQ(errorOf([&] { parse("# nothing\n"); }), "t.trace: the trace holds no tokens");

  CostShape shape;
  shape.experts = 8;
  shape.topk = 2;
  shape.hidden = 128;
  auto run = [&](const std::string& text) {
    RoutingModel routing;
    routing.kind = RoutingKind::kTrace;
    routing.trace = parse(text);
    routing.traceSource = "t.trace";
    estimateCost(tinyCluster(), shape, routing);
  };
  EXPECT_EQ(errorOf([&] { run("0: 1 2\n4: 1 2\n"); }), "t.trace:2: rank 4 is out of range [0, 4) for this cluster");
  EXPECT_EQ(errorOf([&] { run("0: 1 8\n"); }), "t.trace:1: expert 8 is out of range [0, 8)");
  EXPECT_EQ(errorOf([&] { run("0: 3 3\n"); }), "t.trace:1: expert 3 appears twice in one token");
  EXPECT_EQ(errorOf([&] { run("0: 1 2 3\n"); }), "t.trace:1: 3 expert ids, expected top-k = 2");
}

TEST(TopoCostModel, SkewLoadsTheHotRank) {
  CostShape shape = deepseekShape();
  shape.tokensPerRank = 512;
  RoutingModel uniform;
  RoutingModel skewed;
  skewed.kind = RoutingKind::kSkewed;
  skewed.skew = 1.2;
  skewed.seed = 3;
  Cluster cluster = makePreset("dgx-h100", 2);
  CostReport flat = estimateCost(cluster, shape, uniform);
  CostReport hot = estimateCost(cluster, shape, skewed);
  // Expert 0 is hottest and lives on rank 0: it receives far more than a uniform rank, so the
  // receive side bounds the links.
  const PhaseCost& hotFlat = phase(hot, "dispatch", "flat");
  EXPECT_GT(hotFlat.network.bytesReceived, 1.5 * phase(flat, "dispatch", "flat").network.bytesReceived);
  EXPECT_GT(hotFlat.network.bytesReceived, hotFlat.network.bytesSent);
  // A token's experts concentrate on few ranks: fewer distinct ranks per token.
  EXPECT_LT(hot.perToken.ranks, flat.perToken.ranks);
  RoutingModel zero = skewed;
  zero.skew = 0;  // skew 0 is uniform, sampled
  CostReport sampledUniform = estimateCost(cluster, shape, zero);
  EXPECT_NEAR(sampledUniform.perToken.remoteRanks, flat.perToken.remoteRanks, 0.05);
}

TEST(TopoCostModel, UnusableInputsAreErrors) {
  CostShape shape = deepseekShape();
  shape.experts = 100;
  EXPECT_EQ(errorOf([&] { estimateCost(makePreset("dgx-h100", 2), shape, RoutingModel{}); }),
            "experts (100) must be a positive multiple of the EP size (16 GPUs)");
  shape = deepseekShape();
  shape.topk = 0;
  EXPECT_EQ(errorOf([&] { estimateCost(makePreset("dgx-h100", 2), shape, RoutingModel{}); }),
            "top-k (0) must be in [1, experts = 256]");
  Cluster unknownNics = makePreset("dgx-h100", 2);
  for (auto& node : unknownNics.nodes) {
    for (auto& nic : node.nics) nic.gbitPerSec = 0;
  }
  std::string message = errorOf([&] { estimateCost(unknownNics, deepseekShape(), RoutingModel{}); });
  EXPECT_NE(message.find("over the network but its bandwidth is unknown"), std::string::npos) << message;
}

TEST(TopoCostModel, ClosedFormHelper) {
  EXPECT_DOUBLE_EQ(probabilityNoneOf(256, 8, 0), 1.0);
  EXPECT_DOUBLE_EQ(probabilityNoneOf(10, 3, 8), 0.0);
  EXPECT_NEAR(probabilityNoneOf(256, 8, 128), binomialRatio(128, 256, 8), 1e-15);
}

}  // namespace
}  // namespace nccl_moe::plan
