// The sender-positioned low-latency dispatch model (reference/low_latency_sender.h) against the LL
// oracle (reference/low_latency.h): a hand case with every count and position, and on random
// routings (uneven T with an empty and a full rank, masked slots, skew, K from 1 to 8, one and
// several domains, all tokens to one expert) the assembled layouts equal the oracle's exactly.
#include <gtest/gtest.h>

#include <random>

#include "../support/group_case.h"
#include "reference/low_latency.h"
#include "reference/low_latency_sender.h"

namespace nccl_moe::test {
namespace {

RankRouting idsRouting(int tokens, int topk, std::vector<int64_t> ids) {
  RankRouting routing;
  routing.format = RoutingFormat::kTopk;
  routing.numTokens = tokens;
  routing.topk = topk;
  routing.topkIdx = std::move(ids);
  routing.withProbs = false;
  return routing;
}

std::vector<LowLatencyLayout> oracleLayouts(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                                            std::mt19937_64& rng) {
  std::vector<HostRows> x;
  for (const RankRouting& routing : routings)
    x.push_back(randomRows(ElementType::kBf16, routing.numTokens, shape.hidden, 2.0f, rng));
  std::vector<LowLatencyRankOutput> out;
  const Status status = lowLatencyDispatch(shape, routings, x, &out);
  EXPECT_TRUE(status.isOk()) << status.message();
  std::vector<LowLatencyLayout> layouts;
  for (const LowLatencyRankOutput& rank : out) layouts.push_back(rank.layout);
  return layouts;
}

void expectSameLayouts(const std::vector<LowLatencyLayout>& got, const std::vector<LowLatencyLayout>& want,
                       const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t d = 0; d < want.size(); ++d) {
    EXPECT_EQ(got[d].counts, want[d].counts) << what << ", rank " << d;
    EXPECT_EQ(got[d].srcInfo, want[d].srcInfo) << what << ", rank " << d;
  }
}

TEST(LowLatencySender, HandCaseCountsPositionsAndStarts) {
  // 2 ranks, 4 experts (L = 2), K = 2, N = 3. Rank 0: t0 -> {3, 0}, t1 -> {0, -1}, t2 -> {1, 3};
  // rank 1: t0 -> {3, 2}.
  LowLatencyShape shape{2, 0, 4, 8, 2, 3, false, false};
  const std::vector<RankRouting> routings = {idsRouting(3, 2, {3, 0, 0, -1, 1, 3}), idsRouting(1, 2, {3, 2})};
  const LowLatencySendPlan p0 = planLowLatencySend(shape, routings[0]);
  EXPECT_EQ(p0.counts, (std::vector<int32_t>{2, 1, 0, 2}));  // [d][l]: experts 0, 1, 2, 3
  EXPECT_EQ(p0.positions, (std::vector<int32_t>{0, 0, 1, -1, 0, 1}));
  const LowLatencySendPlan p1 = planLowLatencySend(shape, routings[1]);
  EXPECT_EQ(p1.counts, (std::vector<int32_t>{0, 0, 1, 1}));
  EXPECT_EQ(p1.positions, (std::vector<int32_t>{0, 0}));
  const LowLatencySegmentStarts on1 = segmentStartsOf(shape, {p0, p1}, 1);
  EXPECT_EQ(on1.counts, (std::vector<int32_t>{1, 3}));      // expert 2: rank 1's t0; expert 3: 0.t0, 0.t2, 1.t0
  EXPECT_EQ(on1.start, (std::vector<int32_t>{0, 0, 0, 2}));  // [s][l]: rank 1 starts after rank 0's two rows of 3
  std::vector<LowLatencyLayout> layouts;
  ASSERT_TRUE(assembleLowLatencyLayouts(shape, routings, &layouts).isOk());
  const int64_t P = shape.segmentRows();
  const auto info = [&](int d, int l, int64_t i) {
    const int32_t* at = &layouts[d].srcInfo[static_cast<size_t>((l * P + i) * 3)];
    return std::vector<int32_t>{at[0], at[1], at[2]};
  };
  EXPECT_EQ(info(1, 1, 0), (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(info(1, 1, 1), (std::vector<int32_t>{0, 2, 1}));
  EXPECT_EQ(info(1, 1, 2), (std::vector<int32_t>{1, 0, 0}));
  EXPECT_EQ(info(1, 1, 3), (std::vector<int32_t>{-1, -1, -1}));  // past the count
  std::mt19937_64 rng(testSeed());
  expectSameLayouts(layouts, oracleLayouts(shape, routings, rng), "hand case");
}

struct SenderScenario {
  const char* name;
  int ranks, ranksPerDomain, experts, topk, maxTokens;
  double masked, skew;
};

TEST(LowLatencySender, RandomRoutingsGiveTheOraclesLayouts) {
  const SenderScenario scenarios[] = {
      {"r1-top1", 1, 0, 4, 1, 6, 0.0, 0.0},
      {"r2-masked", 2, 0, 8, 2, 9, 0.3, 0.0},
      {"r4-skewed", 4, 0, 16, 4, 17, 0.1, 1.5},
      {"r8-top8-two-domains", 8, 4, 64, 8, 33, 0.05, 0.0},
      {"r8-top8-skewed-four-domains", 8, 2, 32, 8, 40, 0.2, 2.0},
      {"r6-k5-three-domains", 6, 2, 24, 5, 12, 0.0, 0.7},
  };
  std::mt19937_64 rng(testSeed());
  for (const SenderScenario& sc : scenarios)
    for (int round = 0; round < 5; ++round) {
      LowLatencyShape shape{sc.ranks, sc.ranksPerDomain, sc.experts, 8, sc.topk, sc.maxTokens, false, false};
      std::vector<int> tokens(static_cast<size_t>(sc.ranks));
      std::uniform_int_distribution<int> pick(0, sc.maxTokens);
      for (int& t : tokens) t = pick(rng);
      tokens[0] = sc.maxTokens;                 // a full rank
      if (sc.ranks > 1) tokens[1] = 0;          // an empty one
      RoutingRecipe recipe;
      recipe.topk = sc.topk;
      recipe.maskedFraction = sc.masked;
      recipe.skew = sc.skew;
      GroupCase group = makeGroupCase({sc.ranks, sc.experts, shape.hidden, sc.maxTokens, sc.topk}, tokens, recipe,
                                      RoutingFormat::kTopk, ElementType::kBf16, rng);
      std::vector<LowLatencyLayout> layouts;
      const Status status = assembleLowLatencyLayouts(shape, group.routings, &layouts);
      ASSERT_TRUE(status.isOk()) << sc.name << ": " << status.message();
      expectSameLayouts(layouts, oracleLayouts(shape, group.routings, rng),
                        std::string(sc.name) + " round " + std::to_string(round));
    }
}

TEST(LowLatencySender, AllTokensToOneExpertFillItsSegmentInSourceOrder) {
  LowLatencyShape shape{4, 2, 8, 16, 2, 5, false, false};
  std::vector<RankRouting> routings;
  for (int s = 0; s < 4; ++s) {
    std::vector<int64_t> ids;
    for (int t = 0; t < 5; ++t) ids.insert(ids.end(), {-1, 5});  // expert 5: rank 2, local 1, slot 1
    routings.push_back(idsRouting(5, 2, ids));
  }
  std::vector<LowLatencyLayout> layouts;
  ASSERT_TRUE(assembleLowLatencyLayouts(shape, routings, &layouts).isOk());
  EXPECT_EQ(layouts[2].counts, (std::vector<int32_t>{0, 20}));
  const LowLatencySegmentStarts starts =
      segmentStartsOf(shape, {planLowLatencySend(shape, routings[0]), planLowLatencySend(shape, routings[1]),
                              planLowLatencySend(shape, routings[2]), planLowLatencySend(shape, routings[3])},
                      2);
  EXPECT_EQ(starts.start, (std::vector<int32_t>{0, 0, 0, 5, 0, 10, 0, 15}));
  std::mt19937_64 rng(testSeed());
  expectSameLayouts(layouts, oracleLayouts(shape, routings, rng), "all to one expert");
}

TEST(LowLatencySender, BadRoutingIsRefusedAndNothingIsWritten) {
  LowLatencyShape shape{2, 0, 4, 8, 2, 3, false, false};
  std::vector<LowLatencyLayout> layouts(1);
  layouts[0].counts = {42};
  for (const std::vector<int64_t>& ids : {std::vector<int64_t>{0, 0}, std::vector<int64_t>{4, 1},
                                          std::vector<int64_t>{-2, 1}}) {
    const Status status = assembleLowLatencyLayouts(shape, {idsRouting(1, 2, ids), idsRouting(0, 2, {})}, &layouts);
    EXPECT_EQ(status.code(), ncclInvalidArgument) << ids[0] << "," << ids[1];
    ASSERT_EQ(layouts.size(), 1u);
    EXPECT_EQ(layouts[0].counts, (std::vector<int32_t>{42}));
  }
  // Too many tokens for the communicator, and K differing across ranks.
  EXPECT_FALSE(assembleLowLatencyLayouts(shape, {idsRouting(4, 2, {0, 1, 0, 1, 0, 1, 0, 1}), idsRouting(0, 2, {})},
                                         &layouts).isOk());
  EXPECT_FALSE(assembleLowLatencyLayouts(shape, {idsRouting(1, 2, {0, 1}), idsRouting(1, 1, {0})}, &layouts).isOk());
}

}  // namespace
}  // namespace nccl_moe::test
