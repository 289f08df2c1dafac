// Network and NVLink bytes of the HybridEP emulation against the speed-of-light cost model
// (src/plan/cost_model.h): exactly, through the model's routing-trace path fed with the same
// routing; and, for uniform routing with many tokens, against its closed-form expectation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "emulation_case.h"
#include "plan/cost_model.h"
#include "topology/json_io.h"
#include "topology/presets.h"

namespace nccl_moe::test {
namespace {

// The cluster the cost model plans for: the preset `nccl-moe-topo plan` would use where one
// exists (DGX H100 nodes, GB200 NVL72 racks), else a hand-written one of the same shape.
topo::Cluster clusterFor(const Topology& topology) {
  if (topology.ranksPerDomain == 8) return topo::makePreset("dgx-h100", topology.domains);
  if (topology.ranksPerDomain == 72) return topo::makePreset("gb200-nvl72", topology.domains);
  std::string gpu = R"({"nvlink": {"links": 18, "switch_links": 18, "gbytes_per_s_per_link": 25}})";
  std::string nodes;
  for (int n = 0; n < topology.domains; ++n) {
    std::string gpus;
    for (int g = 0; g < topology.ranksPerDomain; ++g) gpus += (g ? "," : "") + gpu;
    nodes += (n ? "," : "") + std::string(R"({"host_id": "n)") + std::to_string(n) + R"(", "gpus": [)" + gpus +
             R"(], "nics": [{"name": "nic0", "kind": "infiniband", "gbit_per_s": 400}]})";
  }
  return topo::parseClusterJson(
      R"({"schema": "nccl-moe-cluster", "version": 1, "name": "emulated", "nodes": [)" + nodes + "]}", "emulated.json");
}

const plan::PhaseCost& dedupPhase(const plan::CostReport& report, const std::string& name) {
  for (const plan::PhaseCost& phase : report.phases)
    if (phase.phase == name && phase.strategy == "node-dedup") return phase;
  throw std::runtime_error("no node-dedup phase " + name);
}

// The group's routing as a cost-model trace (every token has exactly k experts: no masks).
std::vector<plan::TraceToken> traceOf(const GroupCase& group) {
  std::vector<plan::TraceToken> trace;
  for (int r = 0; r < group.shape.ranks; ++r)
    for (int t = 0; t < group.routings[r].numTokens; ++t) {
      plan::TraceToken token;
      token.rank = r;
      forEachSelection(group.routings[r], group.shape.experts, t,
                       [&](const Selection& sel) { token.experts.push_back(sel.expert); });
      trace.push_back(std::move(token));
    }
  return trace;
}

int64_t maxOf(const std::vector<int64_t>& values) { return *std::max_element(values.begin(), values.end()); }

struct Measured {
  HybridPlan plan;
  HybridTraffic predicted;
  emulation::MeasuredTraffic measured;
};

// R ranks of `tokens` tokens each, two experts per rank, uniform top-k routing.
GroupCase uniformGroup(int R, int hidden, int tokens, int topk, std::mt19937_64& rng) {
  const GroupShape shape{R, 2 * R, hidden, tokens, topk};
  RoutingRecipe recipe;
  recipe.topk = topk;
  return makeGroupCase(shape, std::vector<int>(R, tokens), recipe, RoutingFormat::kTopk, ElementType::kBf16, rng);
}

// Plans and runs dispatch + combine of `group` (per-rank layout, FP8 dispatch, bf16 combine).
Measured runUniform(const GroupCase& group, int ranksPerDomain) {
  Measured result;
  const Status planned = buildHybridPlan(group.shape, ranksPerDomain, group.routings, {}, &result.plan);
  EXPECT_TRUE(planned.isOk()) << planned.message();
  emulation::EmulationOptions options;
  options.fp8.enabled = true;
  std::vector<RankDispatchOutput> dispatched;
  Status status = emulation::emulateDispatch(result.plan, group.x, true, options, &dispatched, &result.measured);
  EXPECT_TRUE(status.isOk()) << status.message();
  std::vector<HostRows> expertOut, combined;
  for (RankDispatchOutput& rank : dispatched)
    expertOut.emplace_back(ElementType::kBf16, rank.x.rows(), group.shape.hidden);
  status = emulation::emulateCombine(result.plan, expertOut, nullptr, options, &combined, nullptr, &result.measured);
  EXPECT_TRUE(status.isOk()) << status.message();
  const int H = group.shape.hidden;
  result.predicted = predictTraffic(result.plan, hybridDispatchRowBytes(H, ElementType::kBf16, true),
                                    hybridCombineRowBytes(H, ElementType::kBf16));
  return result;
}

plan::CostShape costShape(const GroupShape& shape, int tokensPerRank) {
  plan::CostShape cost;
  cost.experts = shape.experts;
  cost.topk = shape.maxTopk;
  cost.tokensPerRank = tokensPerRank;
  cost.hidden = shape.hidden;
  cost.fp8Dispatch = true;
  cost.combineElementBytes = 2;
  return cost;
}

std::string topologyName(const ::testing::TestParamInfo<Topology>& param) {
  return std::string("t") + param.param.name;
}

class TrafficTest : public ::testing::TestWithParam<Topology> {};

// Per-rank layout (one row per (token, rank)), so the model's per-rank row counts apply exactly.
TEST_P(TrafficTest, MeasuredBytesEqualCostModelOnTheSameTrace) {
  const Topology topology = GetParam();
  std::mt19937_64 rng(testSeed());
  const int R = topology.ranks();
  const int tokens = R >= 1024 ? 3 : R >= 128 ? 8 : 32;
  const int topk = 8;
  const GroupCase group = uniformGroup(R, 128, tokens, topk, rng);
  const GroupShape& shape = group.shape;
  const Measured run = runUniform(group, topology.ranksPerDomain);
  expectTrafficEqual(run.measured.dispatch, run.predicted.dispatch, "dispatch");
  expectTrafficEqual(run.measured.combine, run.predicted.combine, "combine");

  plan::RoutingModel routing;
  routing.kind = plan::RoutingKind::kTrace;
  routing.trace = traceOf(group);
  routing.traceSource = "emulated routing";
  const plan::CostShape cost = costShape(shape, tokens);
  const plan::CostReport report = plan::estimateCost(clusterFor(topology), cost, routing);
  ASSERT_EQ(report.domains, topology.domains);
  ASSERT_EQ(report.largestDomainGpus, topology.ranksPerDomain);
  const double allTokens = static_cast<double>(report.perToken.tokens);
  EXPECT_EQ(std::llround(report.perToken.remoteDomains * allTokens), run.measured.dispatch.networkRows);
  EXPECT_EQ(std::llround((report.perToken.localRanks + report.perToken.forwardedRows) * allTokens),
            run.measured.dispatch.nvlinkRows);

  // The model's busiest GPU on the network, both directions, both phases.
  const plan::PhaseCost& dispatch = dedupPhase(report, "dispatch");
  const plan::PhaseCost& combine = dedupPhase(report, "combine");
  EXPECT_EQ(dispatch.rowBytes, hybridDispatchRowBytes(shape.hidden, ElementType::kBf16, true));
  EXPECT_DOUBLE_EQ(dispatch.network.bytesSent, maxOf(run.predicted.networkRowsSent) * dispatch.rowBytes);
  EXPECT_DOUBLE_EQ(dispatch.network.bytesReceived, maxOf(run.predicted.networkRowsReceived) * dispatch.rowBytes);
  EXPECT_DOUBLE_EQ(combine.network.bytesSent, maxOf(run.predicted.networkRowsReceived) * combine.rowBytes);
  EXPECT_EQ(run.measured.combine.networkBytes, run.measured.dispatch.networkRows * combine.rowBytes);
}

INSTANTIATE_TEST_SUITE_P(Topologies, TrafficTest, ::testing::ValuesIn(allTopologies()),
                         topologyName);

// C(n - m, k) / C(n, k): the chance that a uniform k-subset of n experts misses m given ones.
double missProbability(int n, int k, int m) {
  if (n - m < k) return 0;
  auto logChoose = [](int a, int b) { return std::lgamma(a + 1.0) - std::lgamma(b + 1.0) - std::lgamma(a - b + 1.0); };
  return std::exp(logChoose(n - m, k) - logChoose(n, k));
}

class ClosedFormTest : public ::testing::TestWithParam<Topology> {};

// Network rows of uniform top-k routing are a sum over N independent tokens of X = the number of
// other domains a token hits. With M domains of G ranks, L experts per rank and q1 / q2 the
// chances to miss one / two given domains' experts:
//   E[X] = (M-1)(1-q1),  E[X^2] = E[X] + (M-1)(M-2)(1 - 2 q1 + q2)   (pairs of indicators).
// The sum is within 5 standard deviations of N E[X] except with probability ~6e-7 (normal tail;
// N >= 4096 makes the normal approximation good), so a failure means a wrong count, not bad luck.
TEST_P(ClosedFormTest, UniformNetworkRowsAgreeWithClosedForm) {
  const Topology topology = GetParam();
  std::mt19937_64 rng(testSeed());
  const int R = topology.ranks();
  const int tokens = std::max(16, 8192 / R);
  const int topk = 8;
  const GroupCase group = uniformGroup(R, 8, tokens, topk, rng);
  const GroupShape& shape = group.shape;
  const Measured run = runUniform(group, topology.ranksPerDomain);
  expectTrafficEqual(run.measured.dispatch, run.predicted.dispatch, "dispatch");

  const plan::CostReport report = plan::estimateCost(clusterFor(topology), costShape(shape, tokens), {});
  ASSERT_NE(report.routing.find("closed form"), std::string::npos) << report.routing;
  const double N = static_cast<double>(R) * tokens;
  const int M = topology.domains;
  const int perDomainExperts = topology.ranksPerDomain * shape.localExperts();
  const double q1 = missProbability(shape.experts, topk, perDomainExperts);
  const double q2 = missProbability(shape.experts, topk, 2 * perDomainExperts);
  const double mean = (M - 1) * (1 - q1);
  const double variance = mean + (M - 1.0) * (M - 2.0) * (1 - 2 * q1 + q2) - mean * mean;
  EXPECT_NEAR(report.perToken.remoteDomains, mean, 1e-9);  // the model's closed form, first principles
  const double expected = N * report.perToken.remoteDomains;
  const double tolerance = 5 * std::sqrt(N * variance);
  const double measured = static_cast<double>(run.measured.dispatch.networkRows);
  std::printf("[ traffic  ] %s: %lld network rows measured, %.1f expected (+-%.1f at 5 sigma)\n", topology.name,
              (long long)run.measured.dispatch.networkRows, expected, tolerance);
  EXPECT_NEAR(measured, expected, tolerance);
  // Per GPU the model's network bytes are the same expectation over tokensPerRank tokens.
  const plan::PhaseCost& dispatch = dedupPhase(report, "dispatch");
  EXPECT_NEAR(static_cast<double>(run.measured.dispatch.networkBytes) / R, dispatch.network.bytesSent,
              tolerance / R * dispatch.rowBytes);
}

INSTANTIATE_TEST_SUITE_P(Topologies, ClosedFormTest,
                         ::testing::Values(Topology{"2x8", 2, 8}, Topology{"4x8", 4, 8}, Topology{"16x8", 16, 8},
                                           Topology{"2x72", 2, 72}),
                         topologyName);

}  // namespace
}  // namespace nccl_moe::test
