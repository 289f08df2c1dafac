// Reading NCCL's cost table as NCCL does, and where a channel cap is safe to give.
#include <gtest/gtest.h>

#include "cost_table_fixture.h"
#include "plugin/cost_table.h"

namespace nccl_moe {
namespace {

using testing_support::CostTable;

TEST(CostTable, CheapestEntryIsWhatNcclPicks) {
  CostTable table;
  int algorithm = -1, protocol = -1;
  ASSERT_TRUE(cheapestEntry(table.costs.data(), CostTable::kAlgos, CostTable::kProtos, &algorithm, &protocol));
  EXPECT_EQ(algorithm, CostTable::kRing);
  EXPECT_EQ(protocol, CostTable::kLL);
  table.costs.fill(-1.0f);
  EXPECT_FALSE(cheapestEntry(table.costs.data(), CostTable::kAlgos, CostTable::kProtos, &algorithm, &protocol));
}

TEST(CostTable, UsableRows) {
  CostTable table;
  EXPECT_TRUE(anyUsable(table.costs.data(), CostTable::kAlgos, CostTable::kProtos, 0, 1));
  EXPECT_FALSE(anyUsable(table.costs.data(), CostTable::kAlgos, CostTable::kProtos, kAlgoCollNetDirect, kAlgoCollNetChain));
  table.at(kAlgoNvls, 2) = 3.0f;
  EXPECT_TRUE(anyUsable(table.costs.data(), CostTable::kAlgos, CostTable::kProtos, kAlgoNvls, kAlgoNvlsTree));
}

TEST(CostTable, NoChannelAnswerWhenNcclWillPickCollNet) {
  CostTable table;
  EXPECT_TRUE(channelAnswerIsSafe(table.costs.data(), CostTable::kAlgos, CostTable::kProtos));
  table.at(kAlgoCollNetDirect, 2) = 1.0f;  // cheaper than every Ring/Tree entry
  EXPECT_FALSE(channelAnswerIsSafe(table.costs.data(), CostTable::kAlgos, CostTable::kProtos));
  EXPECT_TRUE(channelAnswerIsSafe(nullptr, 0, 0));
}

}  // namespace
}  // namespace nccl_moe
