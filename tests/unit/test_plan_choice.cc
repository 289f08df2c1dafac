// The plan choice (src/plan/plan_choice.h) on known machines and hand-made inputs. Expected
// numbers are worked out here by hand (binomial coefficients, row sizes), not taken from the
// implementation.
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "plan/cost_model.h"
#include "plan/moe_shape.h"
#include "plan/plan_choice.h"
#include "topology/presets.h"

namespace nccl_moe::plan {
namespace {

// C(n, k) / C(m, k), as a product.
double binomialRatio(int n, int m, int k) {
  double ratio = 1;
  for (int i = 0; i < k; ++i) ratio *= static_cast<double>(n - i) / (m - i);
  return ratio;
}

// 256 experts, top-8, 4096 tokens per rank, hidden 7168, BF16 both ways: 14336-byte rows.
CostShape bf16Shape() {
  CostShape shape;
  shape.experts = 256;
  shape.topk = 8;
  shape.tokensPerRank = 4096;
  shape.hidden = 7168;
  return shape;
}

// What a communicator of every GPU of `cluster` would pass.
PlanInput inputFor(const topo::Cluster& cluster, const CostShape& shape) {
  const TopologyFacts facts = topologyFacts(cluster, everyGpuARank(cluster));
  PlanInput input;
  input.ranks = cluster.gpuCount();
  input.topologyKnown = true;
  input.topologyDomainSize = facts.ranksPerDomain;
  input.peerAccess = facts.peerAccess;
  input.nvlinkGBps = facts.nvlinkGBps;
  input.networkGBps = facts.networkGBps;
  input.shape = shape;
  return input;
}

ChosenPlan chosen(const PlanInput& input) {
  ChosenPlan plan;
  Status status = choosePlan(input, &plan);
  EXPECT_TRUE(status.isOk()) << status.message();
  return plan;
}

TEST(PlanChoice, OneDgxH100IsDirect) {
  const ChosenPlan plan = chosen(inputFor(topo::makePreset("dgx-h100", 1), bf16Shape()));
  EXPECT_EQ(plan.kind, PlanKind::kDirect);
  EXPECT_STREQ(toString(plan.kind), "direct");
  EXPECT_EQ(plan.ranksPerDomain, 8);
  EXPECT_EQ(plan.domains, 1);
  EXPECT_EQ(plan.chunkRows, 0);
  EXPECT_EQ(plan.chunksInFlight, 0);
  EXPECT_EQ(plan.smsForForwarding, 24);
  EXPECT_EQ(plan.smsForNetworkStaging, 0);
  EXPECT_EQ(plan.networkStagingBytes, 0);
  EXPECT_EQ(plan.dispatch.networkBytes, 0);
  // 32 experts per rank: a given other rank is hit unless all 8 experts avoid its 32.
  const double pRank = 1 - binomialRatio(224, 256, 8);
  EXPECT_NEAR(plan.dispatch.nvlinkBytes, 4096 * 7 * pRank * 14336, 1e-3);
  EXPECT_NE(plan.reason.find("all 8 ranks in one NVLink domain"), std::string::npos) << plan.reason;
  EXPECT_EQ(describePlan(plan).rfind("direct: 1 domain x 8 ranks, no network phase, 24 SMs on NVLink", 0), 0u)
      << describePlan(plan);
}

TEST(PlanChoice, FourDgxH100AreTwoHopOverEightRankDomains) {
  const ChosenPlan plan = chosen(inputFor(topo::makePreset("dgx-h100", 4), bf16Shape()));
  EXPECT_EQ(plan.kind, PlanKind::kTwoHop);
  EXPECT_STREQ(toString(plan.kind), "two-hop");
  EXPECT_EQ(plan.ranksPerDomain, 8);
  EXPECT_EQ(plan.domains, 4);
  // 1 MiB / 14336-byte rows = 73.1 -> 73 rows.
  EXPECT_EQ(plan.chunkRows, 73);
  // 4096 / 73 = 57 advised chunks; the library runs at most kDefaultChunksPerCall = 4 per call.
  EXPECT_EQ(plan.chunksPerCall.chunks, 4);
  EXPECT_EQ(plan.chunksPerCall.rowsPerChunk, 1024);
  // Per token: 3 other domains, each needed unless all 8 experts avoid its 64; NVLink carries the
  // 7 own-domain ranks plus 3 x 7 forwarded rows, each rank (8 experts) hit with pRank.
  const double pDomain = 1 - binomialRatio(192, 256, 8);
  const double pRank = 1 - binomialRatio(248, 256, 8);
  const double network = 4096 * 3 * pDomain * 14336;
  const double nvlink = 4096 * 28 * pRank * 14336;
  EXPECT_NEAR(plan.dispatch.networkBytes, network, 1e-3);
  EXPECT_NEAR(plan.dispatch.nvlinkBytes, nvlink, 1e-3);
  EXPECT_NEAR(plan.combine.networkBytes, network, 1e-3);  // BF16 combine rows are the same size
  EXPECT_NEAR(plan.dispatch.networkSeconds, network / 50e9, 1e-12);
  EXPECT_NEAR(plan.dispatch.nvlinkSeconds, nvlink / 450e9, 1e-12);
  // network / NVLink time = 3.84: between 1x and 4x -> 3 chunks in flight; SMs 24 x 3.84/4.84 = 19.04.
  const double ratio = (network / 50e9) / (nvlink / 450e9);
  ASSERT_GT(ratio, 3.8);
  ASSERT_LT(ratio, 3.9);
  EXPECT_EQ(plan.chunksInFlight, 3);
  EXPECT_EQ(plan.smsForNetworkStaging, 19);
  EXPECT_EQ(plan.smsForForwarding, 5);
  // 3 meta slots of 256-aligned (32 + 4096 x 8 x 12 selections + 4096 x 8 x 12 positions + (32 ranks
  // + 256 experts + 4 domains) x 4 counts) = 787712 B; dispatch rows 14336 B sent and
  // received per other domain; combine rows 14336 + 32 B sent per other domain, received per domain.
  EXPECT_EQ(plan.networkStagingBytes, 3ll * 787712 + 2ll * 3 * 4096 * 14336 + 3ll * 4096 * 14368 + 4ll * 4096 * 14368);
  EXPECT_EQ(describePlan(plan),
            "two-hop: 4 domains x 8 ranks, network in 4 chunks of 1024 rows per call (advised 73 rows, 3 in "
            "flight), SMs 19 network + 5 NVLink, "
            "network staging 731.1 MiB/rank (topology: 4 NVLink domains of 8 consecutive ranks)");
}

TEST(PlanChoice, PredictionIsTheCostModels) {
  topo::Cluster cluster = topo::makePreset("dgx-h100", 4);
  CostShape shape = bf16Shape();
  shape.fp8Dispatch = true;
  const ChosenPlan plan = chosen(inputFor(cluster, shape));
  const CostReport report = estimateCost(cluster, shape, RoutingModel{});
  for (const auto& phase : report.phases) {
    if (phase.strategy != "node-dedup") continue;
    const LinkPrediction& p = phase.phase == "dispatch" ? plan.dispatch : plan.combine;
    EXPECT_EQ(p.networkBytes, phase.network.bytes()) << phase.phase;
    EXPECT_EQ(p.nvlinkBytes, phase.intra.bytes()) << phase.phase;
    EXPECT_EQ(p.networkSeconds, phase.network.seconds) << phase.phase;
    EXPECT_EQ(p.nvlinkSeconds, phase.intra.seconds) << phase.phase;
  }
}

TEST(PlanChoice, Nvl72RackIsOneDirectDomain) {
  CostShape shape = bf16Shape();
  shape.experts = 288;  // 4 per rank
  const ChosenPlan one = chosen(inputFor(topo::makePreset("gb200-nvl72", 1), shape));
  EXPECT_EQ(one.kind, PlanKind::kDirect);
  EXPECT_EQ(one.ranksPerDomain, 72);
  EXPECT_EQ(one.domains, 1);
  EXPECT_EQ(one.nvlinkGBps, 900);
  const ChosenPlan two = chosen(inputFor(topo::makePreset("gb200-nvl72", 2), shape));
  EXPECT_EQ(two.kind, PlanKind::kTwoHop);
  EXPECT_EQ(two.ranksPerDomain, 72);
  EXPECT_EQ(two.domains, 2);
}

TEST(PlanChoice, PcieOnlyIsNcclOnly) {
  CostShape shape = bf16Shape();
  shape.experts = 64;
  const ChosenPlan box = chosen(inputFor(topo::makePreset("pcie-8gpu-2nic", 2), shape));
  EXPECT_EQ(box.kind, PlanKind::kNcclOnly);
  EXPECT_STREQ(toString(box.kind), "nccl-only");
  EXPECT_EQ(box.ranksPerDomain, 1);
  EXPECT_EQ(box.domains, 16);
  EXPECT_EQ(box.smsForNetworkStaging, 24);
  EXPECT_EQ(box.smsForForwarding, 0);
  EXPECT_EQ(box.chunksInFlight, 4);  // no NVLink phase to overlap with
  EXPECT_EQ(box.dispatch.nvlinkBytes, 0);
  // Every other rank (4 experts) is hit unless all 8 experts avoid it: a flat all-to-all.
  EXPECT_NEAR(box.dispatch.networkBytes, 4096 * 15 * (1 - binomialRatio(60, 64, 8)) * 14336, 1e-3);
  // Meta slots: 256-aligned (32 + 4096 x 8 x 12 x 2 + (16 + 64 + 16) x 4) = 786944 B.
  EXPECT_EQ(box.networkStagingBytes, 15ll * 786944 + 2ll * 15 * 4096 * 14336 + 15ll * 4096 * 14368 + 16ll * 4096 * 14368);
  EXPECT_NE(box.reason.find("no NVLink or peer access"), std::string::npos) << box.reason;

  PlanInput input;  // the same, by hand: the topology's node domains are not usable without P2P
  input.ranks = 8;
  input.topologyKnown = true;
  input.topologyDomainSize = 8;
  input.peerAccess = false;
  input.shape = shape;
  const ChosenPlan one = chosen(input);
  EXPECT_EQ(one.kind, PlanKind::kNcclOnly);
  EXPECT_EQ(one.ranksPerDomain, 1);
  EXPECT_EQ(one.domains, 8);
}

TEST(PlanChoice, OverrideSplitsOrIsRefused) {
  PlanInput input = inputFor(topo::makePreset("dgx-h100", 1), bf16Shape());
  input.overrideDomainSize = 2;
  const ChosenPlan plan = chosen(input);
  EXPECT_EQ(plan.kind, PlanKind::kTwoHop);
  EXPECT_EQ(plan.ranksPerDomain, 2);
  EXPECT_EQ(plan.domains, 4);
  EXPECT_NE(plan.reason.find("NCCL_MOE_DOMAIN_SIZE=2"), std::string::npos) << plan.reason;
  EXPECT_NE(plan.reason.find("the topology says 8"), std::string::npos) << plan.reason;

  input.overrideDomainSize = 3;
  ChosenPlan refused;
  Status status = choosePlan(input, &refused);
  EXPECT_EQ(status.code(), ncclInvalidArgument);
  EXPECT_NE(status.message().find("NCCL_MOE_DOMAIN_SIZE=3 does not divide the 8 ranks"), std::string::npos)
      << status.message();

  input.overrideDomainSize = 8;  // the override may also join: one domain
  EXPECT_EQ(chosen(input).kind, PlanKind::kDirect);
  input.overrideDomainSize = 1;
  EXPECT_EQ(chosen(input).kind, PlanKind::kNcclOnly);
}

TEST(PlanChoice, UnknownTopologyIsOneDomain) {
  PlanInput input;
  input.ranks = 8;
  input.shape = bf16Shape();
  const ChosenPlan plan = chosen(input);
  EXPECT_EQ(plan.kind, PlanKind::kDirect);
  EXPECT_EQ(plan.ranksPerDomain, 8);
  EXPECT_EQ(plan.domains, 1);
  EXPECT_NE(plan.reason.find("topology unknown"), std::string::npos) << plan.reason;
  EXPECT_EQ(plan.nvlinkGBps, kAssumedNvlinkGBps);

  // Known but irregular (domains of different sizes): no grid fits, every rank on its own.
  input.topologyKnown = true;
  const ChosenPlan irregular = chosen(input);
  EXPECT_EQ(irregular.kind, PlanKind::kNcclOnly);
  EXPECT_NE(irregular.reason.find("differ in size"), std::string::npos) << irregular.reason;

  PlanInput single;  // one rank is always direct
  single.ranks = 1;
  single.topologyKnown = true;
  single.topologyDomainSize = 1;
  single.shape = bf16Shape();
  EXPECT_EQ(chosen(single).kind, PlanKind::kDirect);
}

TEST(PlanChoice, ChunkRowsByHand) {
  PlanInput input;
  input.ranks = 16;
  input.topologyKnown = true;
  input.topologyDomainSize = 8;
  input.shape = bf16Shape();
  EXPECT_EQ(chosen(input).chunkRows, 73);  // 1048576 / 14336 = 73.1
  input.shape.fp8Dispatch = true;          // 7168 + 56 x 4 = 7392 bytes: 1048576 / 7392 = 141.9
  EXPECT_EQ(chosen(input).chunkRows, 141);
  EXPECT_EQ(chosen(input).chunksPerCall.chunks, 4);  // 4096 / 141 = 30 advised, at most 4 run
  input.shape.tokensPerRank = 300;                    // 300 / 141: 3 chunks advised, of 100 rows
  EXPECT_EQ(chosen(input).chunksPerCall.chunks, 3);
  EXPECT_EQ(chosen(input).chunksPerCall.rowsPerChunk, 100);
  input.shape.tokensPerRank = 100;  // never more than a rank sends
  EXPECT_EQ(chosen(input).chunkRows, 100);
  EXPECT_EQ(chosen(input).chunksPerCall.chunks, 1);
  input.shape.tokensPerRank = 0;  // never fewer than one
  EXPECT_EQ(chosen(input).chunkRows, 1);
  input.shape = bf16Shape();
  input.shape.hidden = 1 << 20;  // a 2 MiB row: one per chunk
  EXPECT_EQ(chosen(input).chunkRows, 1);
}

TEST(PlanChoice, ChunksInFlightAndSmsFollowTheSlowerLink) {
  PlanInput input;
  input.ranks = 16;
  input.topologyKnown = true;
  input.topologyDomainSize = 8;
  input.shape = bf16Shape();
  input.nvlinkGBps = 450;
  input.networkGBps = 1000;  // network faster than NVLink: double buffering is enough
  ChosenPlan fastNetwork = chosen(input);
  EXPECT_EQ(fastNetwork.chunksInFlight, 2);
  EXPECT_LT(fastNetwork.smsForNetworkStaging, fastNetwork.smsForForwarding);
  input.networkGBps = 5;  // network far slower: 4 in flight, most SMs stage for it
  ChosenPlan slowNetwork = chosen(input);
  EXPECT_EQ(slowNetwork.chunksInFlight, 4);
  EXPECT_GT(slowNetwork.smsForNetworkStaging, slowNetwork.smsForForwarding);
  EXPECT_EQ(slowNetwork.smsForNetworkStaging + slowNetwork.smsForForwarding, 24);
  input.sms = 1;
  ChosenPlan refused;
  EXPECT_EQ(choosePlan(input, &refused).code(), ncclInvalidArgument);
}

TEST(PlanChoice, BadShapesAreRefused) {
  PlanInput input;
  input.ranks = 8;
  input.shape = bf16Shape();
  input.shape.experts = 100;
  ChosenPlan plan;
  Status status = choosePlan(input, &plan);
  EXPECT_EQ(status.code(), ncclInvalidArgument);
  EXPECT_NE(status.message().find("experts (100) must be a positive multiple of the 8 ranks"), std::string::npos)
      << status.message();
  input.shape = bf16Shape();
  input.ranks = 0;
  EXPECT_EQ(choosePlan(input, &plan).code(), ncclInvalidArgument);
  // Past the representable limits: refused with the limit, before any chunk arithmetic (which
  // overflowed int for tokens near INT_MAX).
  input.ranks = 16;
  input.overrideDomainSize = 8;
  input.shape.tokensPerRank = INT_MAX;
  status = choosePlan(input, &plan);
  EXPECT_NE(status.message().find(std::to_string(nccl_moe::ShapeLimits::kMaxTokensPerRank)), std::string::npos)
      << status.message();
  input.shape = bf16Shape();
  input.shape.hidden = INT_MAX;
  status = choosePlan(input, &plan);
  EXPECT_NE(status.message().find(std::to_string(nccl_moe::ShapeLimits::kMaxHiddenSize)), std::string::npos)
      << status.message();
  // The largest accepted token count plans without overflow (two-hop chunk arithmetic).
  input.shape = bf16Shape();
  input.shape.tokensPerRank = nccl_moe::ShapeLimits::kMaxTokensPerRank;
  ASSERT_TRUE(choosePlan(input, &plan).isOk());
  EXPECT_GE(static_cast<int64_t>(plan.chunksPerCall.chunks) * plan.chunksPerCall.rowsPerChunk,
            nccl_moe::ShapeLimits::kMaxTokensPerRank);
}

TEST(PlanChoice, TopologyFactsOfPlacements) {
  const topo::Cluster dgx = topo::makePreset("dgx-h100", 2);
  TopologyFacts all = topologyFacts(dgx, everyGpuARank(dgx));
  EXPECT_EQ(all.ranksPerDomain, 8);
  EXPECT_TRUE(all.peerAccess);
  EXPECT_EQ(all.nvlinkGBps, 450);
  EXPECT_EQ(all.networkGBps, 50);
  // Four ranks per node, consecutive: domains of 4.
  std::vector<topo::RankPlacement> half{{0, 0}, {0, 1}, {0, 2}, {0, 3}, {1, 0}, {1, 1}, {1, 2}, {1, 3}};
  EXPECT_EQ(topologyFacts(dgx, half).ranksPerDomain, 4);
  // Interleaved nodes, or unequal counts: no grid.
  std::vector<topo::RankPlacement> interleaved{{0, 0}, {1, 0}, {0, 1}, {1, 1}};
  EXPECT_EQ(topologyFacts(dgx, interleaved).ranksPerDomain, 0);
  std::vector<topo::RankPlacement> unequal{{0, 0}, {0, 1}, {0, 2}, {1, 0}};
  EXPECT_EQ(topologyFacts(dgx, unequal).ranksPerDomain, 0);

  topo::Cluster box = topo::makePreset("pcie-8gpu-2nic", 1);
  TopologyFacts pcie = topologyFacts(box, everyGpuARank(box));
  EXPECT_EQ(pcie.ranksPerDomain, 8);  // the node is a domain in the model ...
  EXPECT_FALSE(pcie.peerAccess);      // ... but its GPUs have neither NVLink nor known P2P
  box.nodes[0].p2pPerfRank.assign(8, std::vector<int>(8, 0));  // CUDA reports P2P everywhere
  EXPECT_TRUE(topologyFacts(box, everyGpuARank(box)).peerAccess);
  box.nodes[0].p2pPerfRank[2][5] = -1;  // one pair without
  EXPECT_FALSE(topologyFacts(box, everyGpuARank(box)).peerAccess);

  const topo::Cluster racks = topo::makePreset("gb200-nvl72", 2);
  TopologyFacts nvl = topologyFacts(racks, everyGpuARank(racks));
  EXPECT_EQ(nvl.ranksPerDomain, 72);
  EXPECT_TRUE(nvl.peerAccess);
}

}  // namespace
}  // namespace nccl_moe::plan
