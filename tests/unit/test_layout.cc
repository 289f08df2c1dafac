// The canonical receive order, checked against brute-force enumerations of the routing.
#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>

#include "../support/group_case.h"

namespace nccl_moe::test {
namespace {

GroupShape shape(int ranks, int experts, int hidden = 8, int maxTokens = 64, int maxTopk = 8) {
  return GroupShape{ranks, experts, hidden, maxTokens, std::min(maxTopk, experts)};
}

TEST(Layout, PerRankRowsAreTokensOwningAnExpertInSourceOrder) {
  const uint64_t seed = testSeed();
  std::mt19937_64 rng(seed);
  for (RoutingFormat format : {RoutingFormat::kTopk, RoutingFormat::kMap}) {
    RoutingRecipe recipe;
    recipe.topk = 4;
    recipe.maskedFraction = 0.2;
    GroupCase group = makeGroupCase(shape(4, 16), {13, 0, 40, 7}, recipe, format, ElementType::kBf16, rng);
    GroupLayout layout = mustLayout(group, LayoutOptions{});
    for (int d = 0; d < 4; ++d) {
      std::vector<std::pair<int, int>> expected;
      std::vector<int64_t> pairs(4, 0);
      for (int s = 0; s < 4; ++s)
        for (int t = 0; t < group.routings[s].numTokens; ++t) {
          std::vector<int> owners = ownerRanks(group.shape, group.routings[s], t);
          if (std::find(owners.begin(), owners.end(), d) != owners.end()) expected.emplace_back(s, t);
          forEachSelection(group.routings[s], 16, t, [&](const Selection& sel) {
            if (sel.expert / 4 == d) ++pairs[sel.expert % 4];
          });
        }
      ASSERT_EQ(layout.recv[d].rows.size(), expected.size()) << "rank " << d;
      for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(layout.recv[d].rows[i].srcRank, expected[i].first);
        EXPECT_EQ(layout.recv[d].rows[i].srcToken, expected[i].second);
      }
      EXPECT_EQ(layout.recv[d].tokensPerExpert, pairs) << "rank " << d;
      EXPECT_FALSE(layout.recv[d].overflow);
    }
  }
}

TEST(Layout, ExpertMajorSegmentsArePaddedAndOrdered) {
  std::mt19937_64 rng(testSeed());
  for (int pad : {0, 1, 4, 16}) {
    RoutingRecipe recipe;
    recipe.topk = 3;
    GroupCase group = makeGroupCase(shape(2, 8), {30, 17}, recipe, RoutingFormat::kTopk, ElementType::kBf16, rng);
    LayoutOptions options{OutputLayout::kExpertMajor, pad, -1};
    GroupLayout layout = mustLayout(group, options);
    const int64_t unit = pad > 1 ? pad : 1;
    for (int d = 0; d < 2; ++d) {
      const RankRecvLayout& recv = layout.recv[d];
      int64_t start = 0;
      for (int l = 0; l < 4; ++l) {
        std::vector<std::pair<int, int>> expected;
        for (int s = 0; s < 2; ++s)
          for (int t = 0; t < group.routings[s].numTokens; ++t)
            for (int k = 0; k < 3; ++k)
              if (group.routings[s].topkIdx[t * 3 + k] == d * 4 + l) expected.emplace_back(s, t);
        const int64_t padded = (static_cast<int64_t>(expected.size()) + unit - 1) / unit * unit;
        EXPECT_EQ(recv.segmentStart[l], start);
        EXPECT_EQ(recv.tokensPerExpert[l], padded);
        EXPECT_EQ(recv.tokensPerExpert[l] % unit, 0);
        for (int64_t i = 0; i < padded; ++i) {
          const RecvRow& row = recv.rows[start + i];
          if (i < static_cast<int64_t>(expected.size())) {
            EXPECT_EQ(row.srcRank, expected[i].first);
            EXPECT_EQ(row.srcToken, expected[i].second);
            EXPECT_EQ(row.localExpert, l);
          } else {
            EXPECT_TRUE(row.isPadding());
          }
        }
        start += padded;
      }
      EXPECT_EQ(static_cast<int64_t>(recv.rows.size()), start);
      EXPECT_EQ(recv.rowsNeeded, start);
    }
  }
}

TEST(Layout, BudgetKeepsLeadingRowsAndFlagsOverflow) {
  std::mt19937_64 rng(testSeed());
  RoutingRecipe recipe;
  recipe.topk = 2;
  GroupCase group = makeGroupCase(shape(2, 4), {50, 50}, recipe, RoutingFormat::kTopk, ElementType::kBf16, rng);
  const LayoutOptions unbudgeted{OutputLayout::kExpertMajor, 8, -1};
  const GroupLayout full = mustLayout(group, unbudgeted);
  for (int d = 0; d < 2; ++d) {
    const int64_t needed = full.recv[d].rowsNeeded;
    ASSERT_GT(needed, 16);
    for (int64_t budget : {int64_t{0}, int64_t{8}, needed - 8, needed, needed + 64}) {
      const GroupLayout cut = mustLayout(group, {OutputLayout::kExpertMajor, 8, budget});
      const RankRecvLayout& recv = cut.recv[d];
      const int64_t kept = std::min(budget, needed);
      ASSERT_EQ(static_cast<int64_t>(recv.rows.size()), kept) << "budget " << budget;
      EXPECT_EQ(recv.overflow, needed > budget);
      int64_t counted = 0;
      for (int64_t c : recv.tokensPerExpert) {
        EXPECT_EQ(c % 8, 0);
        counted += c;
      }
      EXPECT_EQ(counted, kept);
      // The kept rows are exactly the leading rows of the unbudgeted layout.
      for (int64_t r = 0; r < kept; ++r) {
        EXPECT_EQ(recv.rows[r].srcRank, full.recv[d].rows[r].srcRank);
        EXPECT_EQ(recv.rows[r].srcToken, full.recv[d].rows[r].srcToken);
      }
    }
  }
}

TEST(Layout, AdversarialRoutings) {
  // Every token of every rank selects expert 5 only; rank 1 has no tokens.
  GroupShape s = shape(4, 8);
  std::vector<RankRouting> routings(4);
  const std::vector<int> tokens = {9, 0, 3, 64};
  for (int r = 0; r < 4; ++r) {
    routings[r].numTokens = tokens[r];
    routings[r].topk = 2;
    routings[r].withProbs = false;
    routings[r].topkIdx.assign(tokens[r] * 2, -1);
    for (int t = 0; t < tokens[r]; ++t) routings[r].topkIdx[t * 2 + (t % 2)] = 5;
  }
  GroupLayout layout;
  ASSERT_TRUE(buildGroupLayout(s, routings, {OutputLayout::kExpertMajor, 4, -1}, &layout).isOk());
  for (int d = 0; d < 4; ++d) {
    if (d == 2) {
      EXPECT_EQ(layout.recv[d].tokensPerExpert, (std::vector<int64_t>{0, 76}));
      EXPECT_EQ(layout.recv[d].pairsPerExpert, (std::vector<int64_t>{0, 76}));
    } else {
      EXPECT_TRUE(layout.recv[d].rows.empty()) << d;
    }
  }
  // Every slot masked: nothing moves anywhere.
  for (RankRouting& routing : routings) std::fill(routing.topkIdx.begin(), routing.topkIdx.end(), -1);
  ASSERT_TRUE(buildGroupLayout(s, routings, {}, &layout).isOk());
  for (int d = 0; d < 4; ++d) EXPECT_TRUE(layout.recv[d].rows.empty());
  // T = 0 on every rank.
  for (RankRouting& routing : routings) {
    routing.numTokens = 0;
    routing.topkIdx.clear();
  }
  ASSERT_TRUE(buildGroupLayout(s, routings, {}, &layout).isOk());
  EXPECT_EQ(summarizeTraffic(layout).rowsReceived, 0);
}

TEST(Layout, TrafficSummaryCountsRemoteRows) {
  std::mt19937_64 rng(testSeed());
  RoutingRecipe recipe;
  recipe.topk = 4;
  GroupCase group = makeGroupCase(shape(4, 16), {20, 20, 20, 20}, recipe, RoutingFormat::kTopk, ElementType::kBf16, rng);
  GroupLayout layout = mustLayout(group, {});
  int64_t remote = 0, total = 0;
  for (int s = 0; s < 4; ++s)
    for (int t = 0; t < 20; ++t)
      for (int owner : ownerRanks(group.shape, group.routings[s], t)) {
        ++total;
        remote += owner != s;
      }
  const LayoutTraffic traffic = summarizeTraffic(layout);
  EXPECT_EQ(traffic.rowsReceived, total);
  EXPECT_EQ(traffic.rowsToOtherRanks, remote);
  EXPECT_EQ(traffic.pairsRouted, 4 * 20 * 4);
}

}  // namespace
}  // namespace nccl_moe::test
