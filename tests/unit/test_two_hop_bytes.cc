// nccl-moe-perf's multi-node columns (tools/perf/two_hop_bytes.h). Expected numbers are worked out
// here by hand from the formulas in the header, not taken from the implementation.
#include <gtest/gtest.h>

#include <vector>

#include "reference/hybrid_plan.h"
#include "tools/perf/two_hop_bytes.h"

namespace nccl_moe::perf {
namespace {

// `domains` domains; a 1024-byte meta slot and 4-row slots of 256-byte dispatch rows and 320-byte
// combine rows.
ncclMoeCommInfo_t smallLayout(int domains = 2) {
  ncclMoeCommInfo_t info = NCCL_MOE_COMM_INFO_INITIALIZER;
  info.domains = domains;
  info.metaSlotBytes = 1024;
  info.netSlotRows = 4;
  info.netDispatchRowBytes = 256;
  info.netCombineRowBytes = 320;
  return info;
}

TEST(TwoHopBytes, FixedWireIsWholeSlotsToEveryOtherDomain) {
    // Per other domain: 1024 + 4 x 256 + 4 x 320 = 1024 + 1024 + 1280 = 3328.
  EXPECT_EQ(fixedWireBytesPerRank(smallLayout(2)), 3328);
  EXPECT_EQ(fixedWireBytesPerRank(smallLayout(3)), 6656);
  EXPECT_EQ(fixedWireBytesPerRank(smallLayout(8)), 7 * 3328);
  // One domain: nothing crosses the network.
  EXPECT_EQ(fixedWireBytesPerRank(smallLayout(1)), 0);
}

TEST(TwoHopBytes, SplitOfHandMadeTraffic) {
  // 4 ranks; payload rows of 100 bytes (dispatch) and 60 bytes (combine).
  HybridTraffic traffic;
  traffic.dispatch.nvlinkRows = 10;
  traffic.dispatch.nvlinkBytes = 1000;
  traffic.dispatch.networkRows = 5;
  traffic.dispatch.networkBytes = 500;
  traffic.combine.nvlinkRows = 10;
  traffic.combine.nvlinkBytes = 600;
  traffic.combine.networkRows = 5;
  traffic.combine.networkBytes = 300;
  traffic.networkRowsSent = {2, 1, 2, 0};
  traffic.networkRowsReceived = {0, 3, 1, 1};
  const TwoHopBytes bytes = twoHopBytes(traffic, 100, 60, smallLayout(2));
  EXPECT_DOUBLE_EQ(bytes.nvlinkPayload, 400.0);   // (1000 + 600) / 4
  EXPECT_DOUBLE_EQ(bytes.networkPayload, 200.0);  // (500 + 300) / 4
  // Sent per rank: 2x100 + 0x60 = 200, 1x100 + 3x60 = 280, 2x100 + 1x60 = 260, 0 + 60 = 60.
  EXPECT_EQ(bytes.networkPayloadMax, 280);
  EXPECT_EQ(bytes.wireFixed, 3328);
  // 1 x 1024 + (5 x 256 + 5 x 320) / 4 = 1024 + 2880 / 4 = 1744.
  EXPECT_DOUBLE_EQ(bytes.wireCountedRows, 1744.0);
  EXPECT_DOUBLE_EQ(wireOverPayload(static_cast<double>(bytes.wireFixed), bytes.networkPayload), 16.64);
}

TEST(TwoHopBytes, NothingOverTheNetworkStillPaysTheWholeSlots) {
  // 2 ranks whose rows all stay in their domain: 300 + 180 NVLink bytes, no network rows.
  HybridTraffic traffic;
  traffic.dispatch.nvlinkRows = 3;
  traffic.dispatch.nvlinkBytes = 300;
  traffic.combine.nvlinkRows = 3;
  traffic.combine.nvlinkBytes = 180;
  traffic.networkRowsSent = {0, 0};
  traffic.networkRowsReceived = {0, 0};
  const TwoHopBytes bytes = twoHopBytes(traffic, 100, 60, smallLayout(2));
  EXPECT_DOUBLE_EQ(bytes.nvlinkPayload, 240.0);  // (300 + 180) / 2
  EXPECT_DOUBLE_EQ(bytes.networkPayload, 0.0);
  EXPECT_EQ(bytes.networkPayloadMax, 0);
  EXPECT_EQ(bytes.wireFixed, 3328);              // the fixed mode sends the slots anyway
  EXPECT_DOUBLE_EQ(bytes.wireCountedRows, 1024.0);  // the meta slot only
  EXPECT_DOUBLE_EQ(wireOverPayload(3328.0, 0.0), 0.0);  // no ratio: printed as "-"
}

RankRouting oneToken(int64_t first, int64_t second) {
  RankRouting routing;
  routing.numTokens = 1;
  routing.topk = 2;
  routing.topkIdx = {first, second};
  routing.topkProbs = {0.5f, 0.5f};
  return routing;
}

RankRouting noTokens() {
  RankRouting routing;
  routing.topk = 2;
  return routing;
}

TEST(TwoHopBytes, FromAHandWorkedPlan) {
  // 4 ranks in 2 domains of 2 ({0, 1}, {2, 3}), one expert each, top-2, hidden 128, FP8 dispatch:
  // dispatch rows 128 codes + 1 fp32 scale = 132 bytes, bf16 combine rows 256 bytes.
  //   rank 0's token -> experts 1, 3: rank 1 directly over NVLink; domain 1 over the network to
  //     rail peer 2, which forwards to 3 over NVLink.
  //   rank 3's token -> experts 0, 2: rank 2 directly; domain 0 over the network to rail peer 1,
  //     which forwards to 0.
  // NVLink rows 4 (each way), network rows 2 (each way); rank 0 and 3 send one row each, ranks 1
  // and 2 return one domain partial each.
  const GroupShape shape{4, 4, 128, 4, 2};
  const std::vector<RankRouting> routings = {oneToken(1, 3), noTokens(), noTokens(), oneToken(0, 2)};
  HybridPlan plan;
  ASSERT_TRUE(buildHybridPlan(shape, 2, routings, LayoutOptions{}, &plan).isOk());
  const int64_t dispatchRow = hybridDispatchRowBytes(128, ElementType::kBf16, true);
  const int64_t combineRow = hybridCombineRowBytes(128, ElementType::kBf16);
  ASSERT_EQ(dispatchRow, 132);
  ASSERT_EQ(combineRow, 256);
  const HybridTraffic traffic = predictTraffic(plan, dispatchRow, combineRow);
  const TwoHopBytes bytes = twoHopBytes(traffic, dispatchRow, combineRow, smallLayout(2));
  EXPECT_DOUBLE_EQ(bytes.nvlinkPayload, 388.0);   // (4 x 132 + 4 x 256) / 4
  EXPECT_DOUBLE_EQ(bytes.networkPayload, 194.0);  // (2 x 132 + 2 x 256) / 4
  EXPECT_EQ(bytes.networkPayloadMax, 256);        // ranks 1, 2: one 256-byte partial back
  EXPECT_EQ(bytes.wireFixed, 3328);
  // 1024 + (2 x 256 + 2 x 320) / 4 = 1024 + 288.
  EXPECT_DOUBLE_EQ(bytes.wireCountedRows, 1312.0);
}

}  // namespace
}  // namespace nccl_moe::perf
