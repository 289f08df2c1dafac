// The count-first layout protocol (reference/count_first_layout.h) must give the canonical layout
// of reference/layout.h exactly, on fresh random and adversarial routings.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "../support/group_case.h"
#include "reference/count_first_layout.h"

namespace nccl_moe::test {
namespace {

void expectSameLayout(const GroupLayout& want, const GroupLayout& got, const std::string& what) {
  ASSERT_EQ(want.recv.size(), got.recv.size()) << what;
  for (size_t d = 0; d < want.recv.size(); ++d) {
    const RankRecvLayout& a = want.recv[d];
    const RankRecvLayout& b = got.recv[d];
    ASSERT_EQ(a.rows.size(), b.rows.size()) << what << " rank " << d;
    for (size_t i = 0; i < a.rows.size(); ++i) {
      EXPECT_EQ(a.rows[i].srcRank, b.rows[i].srcRank) << what << " rank " << d << " row " << i;
      EXPECT_EQ(a.rows[i].srcToken, b.rows[i].srcToken) << what << " rank " << d << " row " << i;
      EXPECT_EQ(a.rows[i].localExpert, b.rows[i].localExpert) << what << " rank " << d << " row " << i;
    }
    EXPECT_EQ(a.tokensPerExpert, b.tokensPerExpert) << what << " rank " << d;
    EXPECT_EQ(a.pairsPerExpert, b.pairsPerExpert) << what << " rank " << d;
    EXPECT_EQ(a.rowsNeeded, b.rowsNeeded) << what << " rank " << d;
    EXPECT_EQ(a.overflow, b.overflow) << what << " rank " << d;
    if (want.options.layout == OutputLayout::kExpertMajor) {
      EXPECT_EQ(a.segmentStart, b.segmentStart) << what;
    }
  }
  ASSERT_EQ(want.sentTo.size(), got.sentTo.size()) << what;
  for (size_t s = 0; s < want.sentTo.size(); ++s) {
    ASSERT_EQ(want.sentTo[s].size(), got.sentTo[s].size()) << what;
    for (size_t t = 0; t < want.sentTo[s].size(); ++t) {
      ASSERT_EQ(want.sentTo[s][t].size(), got.sentTo[s][t].size()) << what << " source " << s << " token " << t;
      for (size_t i = 0; i < want.sentTo[s][t].size(); ++i) {
        EXPECT_EQ(want.sentTo[s][t][i].dstRank, got.sentTo[s][t][i].dstRank) << what;
        EXPECT_EQ(want.sentTo[s][t][i].row, got.sentTo[s][t][i].row) << what;
      }
    }
  }
}

struct Case {
  const char* name;
  int ranks;
  int experts;
  std::vector<int> tokens;
  int topk;
  double skew;
  double masked;
};

TEST(CountFirstLayout, MatchesTheCanonicalLayoutOnRandomAndAdversarialRoutings) {
  const uint64_t seed = testSeed();
  std::mt19937_64 rng(seed);
  const Case cases[] = {
      {"one_rank", 1, 8, {37}, 3, 0.0, 0.0},
      {"uneven_with_empty_rank", 4, 16, {13, 0, 40, 7}, 4, 0.0, 0.2},
      {"all_to_one_expert", 4, 8, {64, 64, 64, 64}, 1, 60.0, 0.0},
      {"skewed_masked", 3, 12, {50, 1, 33}, 6, 2.0, 0.3},
      {"every_slot_masked", 2, 4, {9, 5}, 2, 0.0, 1.0},
      {"all_empty", 2, 4, {0, 0}, 2, 0.0, 0.0},
      {"eight_ranks_top8", 8, 64, {96, 80, 0, 128, 17, 96, 64, 33}, 8, 0.0, 0.1},
  };
  for (const Case& c : cases)
    for (RoutingFormat format : {RoutingFormat::kTopk, RoutingFormat::kMap}) {
      RoutingRecipe recipe;
      recipe.topk = c.topk;
      recipe.skew = c.skew;
      recipe.maskedFraction = c.masked;
      const int maxTokens = *std::max_element(c.tokens.begin(), c.tokens.end());
      const GroupShape shape{c.ranks, c.experts, 8, std::max(1, maxTokens), c.topk};
      const GroupCase group = makeGroupCase(shape, c.tokens, recipe, format, ElementType::kBf16, rng);
      LayoutOptions perRank;
      LayoutOptions expertMajor;
      expertMajor.layout = OutputLayout::kExpertMajor;
      LayoutOptions padded = expertMajor;
      padded.padMultiple = 8;
      std::vector<LayoutOptions> all = {perRank, expertMajor, padded};
      // Budgets: none kept, a cut inside the rows, exactly the rows needed, ample.
      const int64_t needed = mustLayout(group, padded).recv[0].rowsNeeded;
      for (int64_t budget : {int64_t{0}, needed / 2 / 8 * 8, needed / 8 * 8, needed + 64}) {
        LayoutOptions budgeted = padded;
        budgeted.rowBudget = budget;
        all.push_back(budgeted);
      }
      for (const LayoutOptions& options : all) {
        const std::string what = std::string(c.name) + (format == RoutingFormat::kMap ? " map" : " topk") +
                                 (options.layout == OutputLayout::kExpertMajor ? " expert-major" : " per-rank") +
                                 " pad " + std::to_string(options.padMultiple) + " budget " +
                                 std::to_string(options.rowBudget) + " seed " + std::to_string(seed);
        GroupLayout counted;
        ASSERT_TRUE(buildCountFirstLayout(shape, group.routings, options, &counted).isOk()) << what;
        expectSameLayout(mustLayout(group, options), counted, what);
      }
    }
}

TEST(CountFirstLayout, SourcesNeedOnlyTheirOwnRoutingAndTheCounts) {
  // Source s's positions do not depend on any other rank: its own routing alone gives them.
  std::mt19937_64 rng(testSeed());
  RoutingRecipe recipe;
  recipe.topk = 3;
  recipe.maskedFraction = 0.25;
  const GroupShape shape{4, 16, 8, 30, 3};
  const GroupCase group = makeGroupCase(shape, {30, 12, 0, 29}, recipe, RoutingFormat::kTopk, ElementType::kBf16, rng);
  SourceCounts counts;
  SourcePositions positions;
  countOwnTokens(shape, group.routings[3], &counts, &positions);
  // Positions per destination run 0, 1, 2, ... in token order; counts are their totals.
  for (int d = 0; d < 4; ++d) {
    int64_t next = 0;
    for (int t = 0; t < 29; ++t) {
      const int64_t p = positions.pairPosition[static_cast<size_t>(t) * 4 + d];
      if (p >= 0) {
        EXPECT_EQ(p, next++);
      }
    }
    EXPECT_EQ(next, counts.tokensTo[d]);
  }
  int64_t selections = 0;
  for (int64_t n : counts.pairsOfExpert) selections += n;
  int64_t positioned = 0;
  for (int64_t p : positions.rowPosition) positioned += p >= 0;
  EXPECT_EQ(selections, positioned);
}

TEST(CountFirstLayout, RefusesWhatTheCanonicalLayoutRefuses) {
  const GroupShape shape{2, 4, 8, 4, 2};
  RankRouting bad;
  bad.numTokens = 1;
  bad.topk = 2;
  bad.topkIdx = {1, 9};  // expert 9 does not exist
  bad.topkProbs = {0.5f, 0.5f};
  RankRouting fine = bad;
  fine.topkIdx = {0, 1};
  GroupLayout unused;
  EXPECT_FALSE(buildCountFirstLayout(shape, {fine, bad}, LayoutOptions{}, &unused).isOk());
  LayoutOptions badOptions;
  badOptions.rowBudget = 4;  // a budget needs the expert-major layout
  EXPECT_FALSE(buildCountFirstLayout(shape, {fine, fine}, badOptions, &unused).isOk());
}

}  // namespace
}  // namespace nccl_moe::test
