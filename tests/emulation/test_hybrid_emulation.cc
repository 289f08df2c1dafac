// The HybridEP two-hop protocol executed by one thread per rank, against the CPU reference bit for
// bit: dispatch outputs (rows or FP8 codes + scales, routing in both formats, probs, counts,
// padding, budgets), combine in CombineOrder{ranksPerDomain}, and dispatch's probs gradient; the
// bytes that crossed each link equal the plan's prediction.
#include <gtest/gtest.h>

#include <algorithm>

#include "emulation_case.h"

namespace nccl_moe::test {
namespace {

enum class Scenario { kUniform, kSkewedMaskedUneven, kOneExpert, kHotExperts };

const char* toString(Scenario scenario) {
  switch (scenario) {
    case Scenario::kUniform: return "uniform";
    case Scenario::kSkewedMaskedUneven: return "skewed_masked_uneven";
    case Scenario::kOneExpert: return "one_expert";
    case Scenario::kHotExperts: return "hot_experts";
  }
  return "?";
}

struct Variant {
  RoutingFormat format = RoutingFormat::kTopk;
  OutputLayout layout = OutputLayout::kPerRank;
  bool budget = false;  // expert-major: a row budget below the busiest rank's need
  bool fp8 = false;
  bool powerOfTwoScales = false;
  ElementType rowType = ElementType::kBf16;
  bool withProbs = true;
  int threads = 0;  // 0: one per rank

  std::string name() const {
    std::string text = format == RoutingFormat::kTopk ? "topk" : "map";
    text += layout == OutputLayout::kPerRank ? "_per_rank" : "_expert_major";
    if (budget) text += "_budget";
    if (fp8) text += powerOfTwoScales ? "_fp8_pow2" : "_fp8";
    if (rowType == ElementType::kFp32) text += "_fp32";
    if (!withProbs) text += "_no_probs";
    if (threads) text += "_pool" + std::to_string(threads);
    return text;
  }
};

struct EmulationCase {
  Topology topology;
  Scenario scenario;
  Variant variant;

  std::string name() const {
    return std::string("t") + topology.name + "_" + toString(scenario) + "_" + variant.name();
  }
};

// Per topology size: tokens per rank, hidden, experts per rank, top-k. Hidden 136 spans two FP8
// blocks with a partial one; the 1024-rank group stays tiny so the suite fits CI.
struct Sizes {
  int tokens, hidden, expertsPerRank, topk;
};

Sizes sizesFor(const Topology& topology) {
  if (topology.ranks() <= 32) return {24, 136, 2, 4};
  if (topology.ranks() <= 256) return {6, 24, 2, 8};
  return {3, 8, 1, 8};
}

std::vector<Variant> fullVariants() {
  std::vector<Variant> list;
  for (RoutingFormat format : {RoutingFormat::kTopk, RoutingFormat::kMap})
    for (int layout = 0; layout < 3; ++layout)
      for (bool fp8 : {false, true}) {
        Variant v;
        v.format = format;
        v.layout = layout == 0 ? OutputLayout::kPerRank : OutputLayout::kExpertMajor;
        v.budget = layout == 2;
        v.fp8 = fp8;
        list.push_back(v);
      }
  Variant fp32;
  fp32.rowType = ElementType::kFp32;
  list.push_back(fp32);
  fp32.format = RoutingFormat::kMap;
  fp32.layout = OutputLayout::kExpertMajor;
  list.push_back(fp32);
  Variant pow2;
  pow2.layout = OutputLayout::kExpertMajor;
  pow2.fp8 = true;
  pow2.powerOfTwoScales = true;
  list.push_back(pow2);
  Variant noProbs;
  noProbs.withProbs = false;
  list.push_back(noProbs);
  return list;
}

std::vector<Variant> reducedVariants() {
  Variant a;  // top-k, per-rank, bf16
  Variant b;
  b.format = RoutingFormat::kMap;
  b.layout = OutputLayout::kExpertMajor;
  b.fp8 = true;
  Variant c;
  c.layout = OutputLayout::kExpertMajor;
  c.budget = true;
  Variant d;
  d.format = RoutingFormat::kMap;
  d.fp8 = true;
  d.rowType = ElementType::kFp32;
  return {a, b, c, d};
}

std::vector<EmulationCase> allCases() {
  const Scenario scenarios[] = {Scenario::kUniform, Scenario::kSkewedMaskedUneven, Scenario::kOneExpert,
                                Scenario::kHotExperts};
  std::vector<EmulationCase> cases;
  for (const Topology& topology : allTopologies()) {
    if (topology.ranks() > 256) {
      Variant perRankFp8;
      perRankFp8.fp8 = true;
      Variant mapBudget;
      mapBudget.format = RoutingFormat::kMap;
      mapBudget.layout = OutputLayout::kExpertMajor;
      mapBudget.budget = true;
      Variant pooled = perRankFp8;
      pooled.threads = 16;
      for (Scenario scenario : {Scenario::kUniform, Scenario::kSkewedMaskedUneven, Scenario::kOneExpert})
        for (const Variant& v : {perRankFp8, mapBudget}) cases.push_back({topology, scenario, v});
      cases.push_back({topology, Scenario::kHotExperts, pooled});
      continue;
    }
    const std::vector<Variant> variants = topology.ranks() <= 32 ? fullVariants() : reducedVariants();
    for (Scenario scenario : scenarios)
      for (const Variant& v : variants) cases.push_back({topology, scenario, v});
  }
  return cases;
}

// Every token selects only the last expert (owned by the last rank, remote for most sources);
// its other slots are masked.
void routeAllToLastExpert(GroupCase* group) {
  const int E = group->shape.experts;
  for (RankRouting& routing : group->routings) {
    RankRouting topk = routing;
    const int K = topk.topk;
    for (int t = 0; t < topk.numTokens; ++t)
      for (int k = 0; k < K; ++k) {
        const size_t i = static_cast<size_t>(t) * K + k;
        topk.topkIdx[i] = k == 0 ? E - 1 : -1;
        if (topk.hasProbs()) topk.topkProbs[i] = k == 0 ? 1.0f : 0.0f;
      }
    routing = routing.format == RoutingFormat::kTopk ? topk : toRoutingMap(topk, E);
  }
}

GroupCase makeScenario(const EmulationCase& c, std::mt19937_64& rng) {
  const Topology& topology = c.topology;
  const Sizes sizes = sizesFor(topology);
  const int R = topology.ranks();
  GroupShape shape{R, R * sizes.expertsPerRank, sizes.hidden, sizes.tokens, sizes.topk};
  RoutingRecipe recipe;
  recipe.topk = sizes.topk;
  recipe.withProbs = c.variant.withProbs;
  std::vector<int> tokens(R, sizes.tokens);
  switch (c.scenario) {
    case Scenario::kUniform: break;
    case Scenario::kSkewedMaskedUneven:
      recipe.skew = 1.5;
      recipe.maskedFraction = 0.3;
      for (int r = 0; r < R; ++r) tokens[r] = r % 3 == 1 ? 0 : (r * 7 + 3) % (sizes.tokens + 1);
      break;
    case Scenario::kOneExpert: tokens[0] = 0; break;
    case Scenario::kHotExperts:
      recipe.skew = 6.0;  // nearly every token picks experts of the first ranks
      break;
  }
  GroupCase group = makeGroupCase(shape, tokens, recipe, c.variant.format, c.variant.rowType, rng);
  if (c.scenario == Scenario::kOneExpert) routeAllToLastExpert(&group);
  return group;
}

LayoutOptions layoutOptions(const EmulationCase& c, const GroupCase& group) {
  LayoutOptions options;
  options.layout = c.variant.layout;
  if (options.layout == OutputLayout::kPerRank) return options;
  options.padMultiple = 4;
  if (!c.variant.budget) return options;
  // Half the busiest rank's need (rounded to the padding): that rank overflows, light ones don't.
  const GroupLayout unbudgeted = mustLayout(group, options);
  int64_t most = 0;
  for (const RankRecvLayout& recv : unbudgeted.recv) most = std::max(most, recv.rowsNeeded);
  options.rowBudget = most / 2 / 4 * 4;
  return options;
}

int recvProbsWidth(const GroupLayout& layout) {
  if (layout.options.layout == OutputLayout::kExpertMajor) return 1;
  return layout.format == RoutingFormat::kTopk ? layout.topk : layout.shape.localExperts();
}

class HybridEmulationTest : public ::testing::TestWithParam<EmulationCase> {};

TEST_P(HybridEmulationTest, MatchesReferenceBitForBit) {
  const EmulationCase& c = GetParam();
  std::mt19937_64 rng(testSeed());
  const GroupCase group = makeScenario(c, rng);
  const LayoutOptions options = layoutOptions(c, group);
  const int D = c.topology.ranksPerDomain;
  HybridPlan plan;
  const Status planned = buildHybridPlan(group.shape, D, group.routings, options, &plan);
  ASSERT_TRUE(planned.isOk()) << planned.message();
  const GroupLayout& layout = plan.layout;

  emulation::EmulationOptions run;
  run.fp8.enabled = c.variant.fp8;
  run.fp8.powerOfTwoScales = c.variant.powerOfTwoScales;
  run.threads = c.variant.threads;
  emulation::MeasuredTraffic measured;

  // Dispatch.
  std::vector<RankDispatchOutput> want, got;
  ASSERT_TRUE(referenceDispatch(layout, group.routings, group.x, run.fp8, &want).isOk());
  const Status dispatched = emulation::emulateDispatch(plan, group.x, c.variant.withProbs, run, &got, &measured);
  ASSERT_TRUE(dispatched.isOk()) << dispatched.message();
  expectDispatchBitEqual(got, want);
  // Cached-handle dispatch (combine's backward) moves the same rows without routing.
  std::vector<HostRows> cachedRows;
  std::vector<std::vector<float>> cachedScales;
  ASSERT_TRUE(referenceDispatchRows(layout, group.x, run.fp8, &cachedRows, &cachedScales).isOk());
  for (int d = 0; d < group.shape.ranks && !HasFailure(); ++d) {
    expectRowsBitEqual(got[d].x, cachedRows[d], "cached-handle rows", d);
    expectBitEqual(got[d].scales, cachedScales[d], "cached-handle scales", d);
  }

  // Combine and the probs gradient, from random expert outputs and gradients.
  std::vector<HostRows> expertOut;
  std::vector<std::vector<float>> gradRecvProbs;
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  for (int d = 0; d < group.shape.ranks; ++d) {
    expertOut.push_back(randomRows(c.variant.rowType, layout.recvRows(d), group.shape.hidden, 2.0f, rng));
    gradRecvProbs.emplace_back(static_cast<size_t>(layout.recvRows(d)) * recvProbsWidth(layout));
    for (float& g : gradRecvProbs.back()) g = unit(rng);
  }
  std::vector<HostRows> wantCombined, gotCombined;
  std::vector<std::vector<float>> wantGrad, gotGrad;
  ASSERT_TRUE(referenceCombine(layout, expertOut, CombineOrder{D}, &wantCombined).isOk());
  ASSERT_TRUE(referenceProbsGrad(layout, group.routings, gradRecvProbs, &wantGrad).isOk());
  const Status combined =
      emulation::emulateCombine(plan, expertOut, &gradRecvProbs, run, &gotCombined, &gotGrad, &measured);
  ASSERT_TRUE(combined.isOk()) << combined.message();
  for (int s = 0; s < group.shape.ranks && !HasFailure(); ++s) {
    expectRowsBitEqual(gotCombined[s], wantCombined[s], "combined tokens", s);
    expectBitEqual(gotGrad[s], wantGrad[s], "probs gradient", s);
  }

  // Bytes: measured == plan, and the network rows are the deduplicated (token, domain) pairs.
  const HybridTraffic predicted =
      predictTraffic(plan, hybridDispatchRowBytes(group.shape.hidden, c.variant.rowType, c.variant.fp8),
                     hybridCombineRowBytes(group.shape.hidden, c.variant.rowType));
  expectTrafficEqual(measured.dispatch, predicted.dispatch, "dispatch");
  expectTrafficEqual(measured.combine, predicted.combine, "combine");
  EXPECT_EQ(predicted.dispatch.networkRows, dedupNetworkRows(layout, D));
  if (c.topology.domains > 1 && c.scenario == Scenario::kUniform) {
    EXPECT_GT(predicted.dispatch.networkRows, 0);
  }
}

std::string caseName(const ::testing::TestParamInfo<EmulationCase>& param) { return param.param.name(); }

INSTANTIATE_TEST_SUITE_P(Topologies, HybridEmulationTest, ::testing::ValuesIn(allCases()), caseName);

}  // namespace
}  // namespace nccl_moe::test
