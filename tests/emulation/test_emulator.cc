// The executor itself: results independent of how ranks map to threads, the network refusing
// what is not a rail-peer transfer, and bad inputs refused before any thread starts.
#include <gtest/gtest.h>

#include "emulation_case.h"

namespace nccl_moe::test {
namespace {

struct RunOutputs {
  std::vector<RankDispatchOutput> dispatched;
  std::vector<HostRows> combined;
  std::vector<std::vector<float>> grad;
  emulation::MeasuredTraffic traffic;
};

GroupCase skewedGroup(std::mt19937_64& rng) {
  RoutingRecipe recipe;
  recipe.topk = 6;
  recipe.skew = 1.0;
  recipe.maskedFraction = 0.2;
  std::vector<int> tokens(32);
  for (int r = 0; r < 32; ++r) tokens[r] = (r * 5) % 17;
  return makeGroupCase({32, 64, 136, 16, 6}, tokens, recipe, RoutingFormat::kTopk, ElementType::kBf16, rng);
}

RunOutputs runAll(const HybridPlan& plan, const GroupCase& group, int threads) {
  RunOutputs run;
  emulation::EmulationOptions options;
  options.threads = threads;
  options.fp8.enabled = true;
  EXPECT_TRUE(emulation::emulateDispatch(plan, group.x, true, options, &run.dispatched, &run.traffic).isOk());
  std::vector<HostRows> expertOut;
  std::vector<std::vector<float>> gradIn;
  for (int d = 0; d < group.shape.ranks; ++d) {
    expertOut.emplace_back(ElementType::kBf16, plan.layout.recvRows(d), group.shape.hidden);
    for (int64_t r = 0; r < plan.layout.recvRows(d); ++r)
      for (int c = 0; c < group.shape.hidden; ++c) expertOut.back().set(r, c, 0.01f * static_cast<float>(r + c + d));
    gradIn.emplace_back(static_cast<size_t>(plan.layout.recvRows(d)) * 6, 0.5f + static_cast<float>(d));
  }
  EXPECT_TRUE(
      emulation::emulateCombine(plan, expertOut, &gradIn, options, &run.combined, &run.grad, &run.traffic).isOk());
  return run;
}

TEST(HybridEmulator, SameBitsWhateverTheThreadCount) {
  std::mt19937_64 rng(testSeed());
  const GroupCase group = skewedGroup(rng);
  HybridPlan plan;
  ASSERT_TRUE(buildHybridPlan(group.shape, 8, group.routings, {}, &plan).isOk());
  const RunOutputs perRank = runAll(plan, group, 0);
  for (int threads : {1, 3}) {
    const RunOutputs pooled = runAll(plan, group, threads);
    expectDispatchBitEqual(pooled.dispatched, perRank.dispatched);
    for (int s = 0; s < group.shape.ranks; ++s) {
      expectRowsBitEqual(pooled.combined[s], perRank.combined[s], "combined tokens", s);
      expectBitEqual(pooled.grad[s], perRank.grad[s], "probs gradient", s);
    }
    expectTrafficEqual(pooled.traffic.dispatch, perRank.traffic.dispatch, "dispatch");
    expectTrafficEqual(pooled.traffic.combine, perRank.traffic.combine, "combine");
  }
}

TEST(HybridEmulator, NetworkCarriesOnlyRailPeerTransfers) {
  std::mt19937_64 rng(testSeed());
  const GroupCase group = skewedGroup(rng);
  HybridPlan plan;
  ASSERT_TRUE(buildHybridPlan(group.shape, 8, group.routings, {}, &plan).isOk());
  int source = 0;
  while (plan.ranks[source].networkSends.empty()) ++source;
  TokenRoute& route = plan.ranks[source].networkSends[0];
  route.collector = route.collector / 8 * 8 + (route.collector + 1) % 8;  // a neighbour of the rail peer
  std::vector<RankDispatchOutput> out;
  emulation::MeasuredTraffic traffic;
  const Status status = emulation::emulateDispatch(plan, group.x, true, {}, &out, &traffic);
  EXPECT_EQ(status.code(), ncclInternalError);
  EXPECT_NE(status.message().find("not rail peers"), std::string::npos) << status.message();
}

TEST(HybridEmulator, RefusesMismatchedInputs) {
  std::mt19937_64 rng(testSeed());
  const GroupCase group = skewedGroup(rng);
  HybridPlan plan;
  ASSERT_TRUE(buildHybridPlan(group.shape, 8, group.routings, {}, &plan).isOk());
  std::vector<RankDispatchOutput> out;
  std::vector<HostRows> combined;
  emulation::MeasuredTraffic traffic;
  std::vector<HostRows> x = group.x;
  x[3] = HostRows(ElementType::kFp32, x[3].rows(), x[3].cols());
  EXPECT_EQ(emulation::emulateDispatch(plan, x, true, {}, &out, &traffic).code(), ncclInvalidArgument);
  x.pop_back();
  EXPECT_EQ(emulation::emulateDispatch(plan, x, true, {}, &out, &traffic).code(), ncclInvalidArgument);
  std::vector<HostRows> tooFew(group.shape.ranks, HostRows(ElementType::kBf16, 0, group.shape.hidden));
  EXPECT_EQ(emulation::emulateCombine(plan, tooFew, nullptr, {}, &combined, nullptr, &traffic).code(),
            ncclInvalidArgument);
}

}  // namespace
}  // namespace nccl_moe::test
