// The host half of tools/harness: the reference layer the tools check the GPU against and the
// bit-exact comparison that counts wrong elements (perf's #wrong, the demo's GPU table).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "reference/random_routing.h"
#include "tools/harness/mismatch.h"
#include "tools/harness/reference_layer.h"

namespace nccl_moe::harness {
namespace {

GroupInputs smallGroup(int ranks, ElementType type = ElementType::kBf16) {
  GroupInputs in;
  in.shape = GroupShape{ranks, 4 * ranks, 200, 16, 3};
  std::mt19937_64 rng(7);
  RoutingRecipe recipe;
  recipe.numTokens = 16;
  recipe.topk = 3;
  recipe.experts = 4 * ranks;
  for (int r = 0; r < ranks; ++r) {
    in.routings.push_back(randomTopkRouting(recipe, rng));
    in.x.push_back(randomRows(type, 16, 200, 1.0f, rng));
  }
  return in;
}

TEST(ToolHarness, ElementsCountedBitForBit) {
  const std::vector<uint16_t> want = {1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> got = want;
  const auto bytes = [](const std::vector<uint16_t>& v) { return reinterpret_cast<const uint8_t*>(v.data()); };
  Mismatch same = compareElements("rows", bytes(got), 6, bytes(want), 6, 3, 2);
  EXPECT_TRUE(same.ok());
  EXPECT_EQ(same.compared, 6);
  EXPECT_EQ(same.first, "");
  got[4] = 0x3f80;
  got[5] = 0;
  const Mismatch two = compareElements("rows", bytes(got), 6, bytes(want), 6, 3, 2);
  EXPECT_EQ(two.wrong, 2);
  EXPECT_EQ(two.first, "rows: row 1 element 1: got 0x3f80, want 0x0005");
  // Missing and extra elements are wrong too.
  const Mismatch shorter = compareElements("rows", bytes(want), 4, bytes(want), 6, 3, 2);
  EXPECT_EQ(shorter.wrong, 2);
  EXPECT_EQ(shorter.first, "rows: 4 elements, the reference has 6");
  EXPECT_EQ(compareElements("rows", bytes(want), 6, bytes(want), 5, 3, 2).wrong, 1);
}

TEST(ToolHarness, MinusZeroIsNotZero) {
  // Bit for bit: a sum that lands on -0.0 where the reference has +0.0 is a wrong element.
  const float want[] = {0.0f}, got[] = {-0.0f};
  EXPECT_EQ(compareElements("out", reinterpret_cast<const uint8_t*>(got), 1, reinterpret_cast<const uint8_t*>(want),
                            1, 1, 4)
                .wrong,
            1);
}

TEST(ToolHarness, RowsOfAnotherShapeAreAllWrong) {
  const HostRows want(ElementType::kBf16, 2, 8), got(ElementType::kFp32, 2, 8);
  const Mismatch m = compareRows("combine output", got, want);
  EXPECT_EQ(m.wrong, 16);
  EXPECT_EQ(m.first, "combine output: [2, 8] fp32, the reference has [2, 8] bf16");
}

TEST(ToolHarness, ReferenceLayerCombinesEveryTokenBack) {
  const GroupInputs in = smallGroup(4);
  ReferenceLayer ref;
  ASSERT_TRUE(runReferenceLayer(in, LayerSettings{}, &ref).isOk());
  ASSERT_EQ(ref.dispatched.size(), 4u);
  ASSERT_EQ(ref.combined.size(), 4u);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(ref.expertOut[r].rows(), ref.layout.recvRows(r));
    EXPECT_EQ(ref.combined[r].rows(), 16);
    // Identity expert: every token comes back as x * sum of its probs (which is 1), to bf16 rounding.
    for (int t = 0; t < 16; ++t)
      for (int c = 0; c < 200; ++c)
        EXPECT_NEAR(ref.combined[r].get(t, c), in.x[r].get(t, c), 3.0 / 256 * std::fabs(in.x[r].get(t, c)) + 1e-7);
  }
}

TEST(ToolHarness, IdentityExpertScalesRowsByTheirProbs) {
  HostRows rows(ElementType::kBf16, 2, 2);
  rows.set(0, 0, 1.0f);
  rows.set(0, 1, -2.0f);
  rows.set(1, 0, 4.0f);
  rows.set(1, 1, 0.5f);
  const HostRows y = identityExpert(rows, {}, {0.25f, 0.25f, 0.5f, 0.0f}, 2, ElementType::kBf16);
  EXPECT_EQ(y.get(0, 0), 0.5f);
  EXPECT_EQ(y.get(0, 1), -1.0f);
  EXPECT_EQ(y.get(1, 0), 2.0f);
  EXPECT_EQ(y.get(1, 1), 0.25f);
  // Without probs: a copy.
  EXPECT_EQ(identityExpert(rows, {}, {}, 2, ElementType::kBf16).bytes(), rows.bytes());
}

TEST(ToolHarness, DispatchComparisonFindsOneFlippedBitInEachArray) {
  const GroupInputs in = smallGroup(2);
  ReferenceLayer ref;
  LayerSettings settings;
  settings.fp8 = Fp8Options{true, false};
  ASSERT_TRUE(runReferenceLayer(in, settings, &ref).isOk());
  const RankDispatchOutput& want = ref.dispatched[1];
  DispatchResult got;
  got.x = want.x;
  got.scales = want.scales;
  got.topkIdx = want.topkIdx;
  got.probs = want.probs;
  EXPECT_TRUE(compareDispatch(got, want).ok());
  EXPECT_EQ(compareDispatch(got, want).compared,
            want.x.rows() * 200 + static_cast<int64_t>(want.scales.size() + want.topkIdx.size() + want.probs.size()));
  got.x.bytes()[5] ^= 1;
  got.scales[1] = -got.scales[1];
  got.topkIdx[2] = 99;
  got.probs.back() += 1.0f;
  const Mismatch m = compareDispatch(got, want);
  EXPECT_EQ(m.wrong, 4);
  EXPECT_EQ(m.first.rfind("dispatch rows: row 0 element 5: got 0x", 0), 0u) << m.first;
  // Arrays the call was not asked for are not compared.
  DispatchResult rowsOnly;
  rowsOnly.x = want.x;
  rowsOnly.scales = want.scales;
  EXPECT_TRUE(compareDispatch(rowsOnly, want).ok());
}

TEST(ToolHarness, CountsComparedOneValueEach) {
  RankRecvLayout want;
  want.rows.resize(5);
  want.tokensPerExpert = {2, 3};
  EXPECT_TRUE(compareCounts(5, {2, 3}, want).ok());
  EXPECT_EQ(compareCounts(5, {2, 3}, want).compared, 3);
  const Mismatch m = compareCounts(6, {2, 4}, want);
  EXPECT_EQ(m.wrong, 2);
  EXPECT_EQ(m.first, "received rows: row 0 element 0: got 0x0000000000000006, want 0x0000000000000005");
}

TEST(ToolHarness, CombineOrderFollowsTheDomains) {
  // Expert-major rows are summed per rank first, then per domain, each partial rounded to bf16: the
  // order changes the result, so the reference must be built with the communicator's domains
  // (perf and the demo take them from ncclMoeCommGetInfo). Each order is deterministic.
  const GroupInputs in = smallGroup(4);
  LayerSettings one, two;
  one.layout.layout = two.layout.layout = OutputLayout::kExpertMajor;
  two.order = CombineOrder{2};
  ReferenceLayer a, b, again;
  ASSERT_TRUE(runReferenceLayer(in, one, &a).isOk());
  ASSERT_TRUE(runReferenceLayer(in, two, &b).isOk());
  ASSERT_TRUE(runReferenceLayer(in, two, &again).isOk());
  int64_t differ = 0;
  for (int r = 0; r < 4; ++r) {
    EXPECT_TRUE(compareRows("combine", again.combined[r], b.combined[r]).ok());
    differ += compareRows("combine", a.combined[r], b.combined[r]).wrong;
  }
  EXPECT_GT(differ, 0);  // 886 of the 12800 values with this seed
}

}  // namespace
}  // namespace nccl_moe::harness
