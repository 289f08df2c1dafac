// The HybridEP plan on a case small enough to check by hand, and its argument checks.
#include <gtest/gtest.h>

#include "emulation_case.h"

namespace nccl_moe::test {
namespace {

// Two domains of two ranks, 8 experts (rank r owns 2r and 2r+1), top-2, hidden 4 (bf16: 8 bytes).
GroupShape tinyShape() { return {4, 8, 4, 3, 2}; }

RankRouting topk(const std::vector<std::vector<int64_t>>& tokens) {
  RankRouting routing;
  routing.numTokens = static_cast<int>(tokens.size());
  routing.topk = 2;
  for (const auto& experts : tokens)
    for (int64_t e : experts) {
      routing.topkIdx.push_back(e);
      routing.topkProbs.push_back(0.5f);
    }
  return routing;
}

std::vector<RankRouting> tinyRoutings() {
  return {
      topk({{0, 1}, {2, 4}}),  // t0 stays on rank 0; t1 -> rank 1 (own domain) and rank 2 (relay 2)
      topk({{6, 7}, {4, 6}}),  // t0 -> rank 3 twice (relay 3); t1 -> ranks 2, 3 (relay 3 forwards)
      topk({{0, 7}}),          // t0 -> rank 0 (relay 0) and rank 3 (own domain)
      topk({}),
  };
}

std::vector<int> destinations(const TokenRoute& route) {
  std::vector<int> ranks;
  for (const Delivery& delivery : route.deliveries) ranks.push_back(delivery.dstRank);
  return ranks;
}

TEST(HybridPlan, TinyCaseByHand) {
  HybridPlan plan;
  ASSERT_TRUE(buildHybridPlan(tinyShape(), 2, tinyRoutings(), {}, &plan).isOk());
  const auto& r0 = plan.ranks[0];
  ASSERT_EQ(r0.directRoutes.size(), 2u);
  EXPECT_EQ(destinations(r0.directRoutes[0]), std::vector<int>({0}));
  EXPECT_EQ(destinations(r0.directRoutes[1]), std::vector<int>({1}));
  ASSERT_EQ(r0.networkSends.size(), 1u);
  EXPECT_EQ(r0.networkSends[0].srcToken, 1);
  EXPECT_EQ(r0.networkSends[0].collector, 2);  // rank 0 = (0, 0): rail peer (1, 0) = rank 2
  EXPECT_EQ(destinations(r0.networkSends[0]), std::vector<int>({2}));

  const auto& r1 = plan.ranks[1];
  EXPECT_TRUE(r1.directRoutes.empty());
  ASSERT_EQ(r1.networkSends.size(), 2u);
  EXPECT_EQ(r1.networkSends[0].collector, 3);
  EXPECT_EQ(destinations(r1.networkSends[0]), std::vector<int>({3}));
  const Delivery& twice = r1.networkSends[0].deliveries[0];
  ASSERT_EQ(twice.selections.size(), 2u);  // one row carries both experts of rank 3
  EXPECT_EQ(twice.selections[0].localExpert, 0);
  EXPECT_EQ(twice.selections[1].localExpert, 1);
  EXPECT_EQ(twice.selections[1].slot, 1);
  EXPECT_EQ(twice.rows.size(), 1u);
  EXPECT_EQ(destinations(r1.networkSends[1]), std::vector<int>({2, 3}));

  const auto& r2 = plan.ranks[2];
  ASSERT_EQ(r2.networkSends.size(), 1u);
  EXPECT_EQ(r2.networkSends[0].collector, 0);
  EXPECT_EQ(destinations(r2.directRoutes[0]), std::vector<int>({3}));

  // Relays: rank 2 gets rank 0's route, rank 3 both of rank 1's, rank 0 rank 2's.
  ASSERT_EQ(plan.ranks[2].forwards.size(), 1u);
  EXPECT_EQ(plan.ranks[2].forwards[0].srcRank, 0);
  ASSERT_EQ(plan.ranks[3].forwards.size(), 2u);
  EXPECT_EQ(plan.ranks[3].forwards[1].index, 1);
  ASSERT_EQ(plan.ranks[0].forwards.size(), 1u);
  EXPECT_EQ(plan.ranks[0].forwards[0].srcRank, 2);

  // Combine inboxes: own direct routes first, then relayed ones.
  EXPECT_EQ(plan.ranks[0].inboxRows, 3);
  EXPECT_EQ(r2.networkSends[0].inboxSlot, 2);
  EXPECT_EQ(plan.ranks[3].inboxRows, 3);
  EXPECT_EQ(plan.ranks[1].inboxRows, 0);
  // Rank 3 receives: rank 2's direct token, rank 1's two network tokens.
  EXPECT_EQ(plan.ranks[3].partialSends.size(), 3u);

  const HybridTraffic traffic = predictTraffic(plan, 8, 8);
  EXPECT_EQ(traffic.dispatch.networkRows, 4);  // r0t1, r1t0, r1t1, r2t0: once each
  EXPECT_EQ(traffic.dispatch.networkBytes, 32);
  // NVLink: r0t1 -> rank 1, r2t0 -> rank 3 (direct), r1t1 relay 3 -> rank 2 (forwarded).
  EXPECT_EQ(traffic.dispatch.nvlinkRows, 3);
  EXPECT_EQ(traffic.combine.networkRows, 4);
  EXPECT_EQ(traffic.combine.nvlinkRows, 3);
  EXPECT_EQ(traffic.networkRowsSent, std::vector<int64_t>({1, 2, 1, 0}));
  EXPECT_EQ(traffic.networkRowsReceived, std::vector<int64_t>({1, 0, 1, 2}));
}

TEST(HybridPlan, OneDomainIsDirectAndSingletonDomainsAreAllNetwork) {
  HybridPlan whole, singletons;
  ASSERT_TRUE(buildHybridPlan(tinyShape(), 4, tinyRoutings(), {}, &whole).isOk());
  ASSERT_TRUE(buildHybridPlan(tinyShape(), 1, tinyRoutings(), {}, &singletons).isOk());
  const HybridTraffic inside = predictTraffic(whole, 8, 8);
  const HybridTraffic apart = predictTraffic(singletons, 8, 8);
  EXPECT_EQ(inside.dispatch.networkRows, 0);
  EXPECT_EQ(inside.dispatch.nvlinkRows, 7);  // every (token, other rank) pair
  EXPECT_EQ(apart.dispatch.networkRows, 7);
  EXPECT_EQ(apart.dispatch.nvlinkRows, 0);   // a singleton domain's relay is the destination
}

TEST(HybridPlan, RejectsDomainsThatDoNotTileTheGroup) {
  HybridPlan plan;
  for (int bad : {0, -2, 3, 5}) {
    const Status status = buildHybridPlan(tinyShape(), bad, tinyRoutings(), {}, &plan);
    EXPECT_EQ(status.code(), ncclInvalidArgument) << bad;
  }
  std::vector<RankRouting> broken = tinyRoutings();
  broken[1].topkIdx[0] = 99;
  EXPECT_EQ(buildHybridPlan(tinyShape(), 2, broken, {}, &plan).code(), ncclInvalidArgument);
}

}  // namespace
}  // namespace nccl_moe::test
