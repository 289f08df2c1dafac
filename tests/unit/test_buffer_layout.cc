// The peer-visible buffer of a rank: regions in order, aligned, disjoint, and as large as the
// protocol needs for the configuration.
#include <gtest/gtest.h>

#include "core/comm.h"
#include "misc/numerics.h"
#include "plan/plan_choice.h"

namespace nccl_moe {
namespace {

CommConfig configOf(int experts, int hidden, int maxTokens, int maxTopk, bool fp8, ElementType rowType) {
  CommConfig config;
  config.shape = GroupShape{1, experts, hidden, maxTokens, maxTopk};
  config.fp8Dispatch = fp8;
  config.rowType = rowType;
  return config;
}

TEST(BufferLayout, RegionsAreAlignedDisjointAndSizedForTheProtocol) {
  for (bool fp8 : {false, true}) {
    for (int ranks : {1, 2, 8, 72}) {
      const int hidden = 7169, tokens = 300, topk = 8;
      const CommConfig config = configOf(ranks * 4, hidden, tokens, topk, fp8, ElementType::kBf16);
      const BufferLayout layout = computeBufferLayout(config, ranks, ranks, 1);
      const size_t offsets[] = {layout.signals, layout.meta, layout.dispatchRows, layout.dispatchScales,
                                layout.combineRows, layout.combineProbs, layout.total};
      for (size_t i = 0; i + 1 < std::size(offsets); ++i) {
        EXPECT_EQ(offsets[i] % 256, 0u) << "region " << i;
        EXPECT_LE(offsets[i], offsets[i + 1]) << "region " << i;
      }
      // Each region holds what the kernels address in it.
      EXPECT_GE(layout.meta - layout.signals, sizeof(uint64_t) * kPhaseCount * ranks);
      EXPECT_GE(layout.dispatchRows - layout.meta, sizeof(MetaHeader) + size_t{tokens} * topk * sizeof(MetaSelection));
      // The count-first engine's positions (after the selections) and counts (ranks, experts, domains).
      const size_t counters = static_cast<size_t>(ranks) + ranks * 4 + 1;
      EXPECT_GE(layout.metaPositions, sizeof(MetaHeader) + size_t{tokens} * topk * sizeof(MetaSelection));
      EXPECT_GE(layout.metaCounts, layout.metaPositions + size_t{tokens} * topk * sizeof(MetaPosition));
      EXPECT_GE(layout.metaSlotBytes, layout.metaCounts + counters * sizeof(int32_t));
      EXPECT_EQ(layout.metaPositions % 16, 0u);
      EXPECT_EQ(layout.metaCounts % 16, 0u);
      const size_t stagedRow = fp8 ? hidden : size_t{hidden} * 2;
      EXPECT_GE(layout.dispatchScales - layout.dispatchRows, size_t{tokens} * stagedRow);
      EXPECT_GE(layout.combineRows - layout.dispatchScales, fp8 ? size_t{tokens} * fp8BlockCount(hidden) * 4 : 0u);
      const size_t pairs = static_cast<size_t>(ranks) * tokens;
      EXPECT_GE(layout.combineProbs - layout.combineRows, pairs * hidden * 2);
      EXPECT_GE(layout.total - layout.combineProbs, pairs * topk * sizeof(float));
      // And not much more: padding is alignment only.
      const size_t needed = sizeof(uint64_t) * kPhaseCount * ranks + sizeof(MetaHeader) +
                            size_t{tokens} * topk * (sizeof(MetaSelection) + sizeof(MetaPosition)) +
                            counters * sizeof(int32_t) + size_t{tokens} * stagedRow +
                            (fp8 ? size_t{tokens} * fp8BlockCount(hidden) * 4 : 0) + pairs * hidden * 2 +
                            pairs * topk * sizeof(float);
      EXPECT_LE(layout.total, needed + 6 * 256 + 2 * 16);
    }
  }
}

TEST(BufferLayout, TwoHopRegionsHoldOneSlotPerOtherDomain) {
  for (bool fp8 : {false, true}) {
    const int hidden = 333, tokens = 50, topk = 6, D = 4, M = 3;
    const CommConfig config = configOf(D * M * 2, hidden, tokens, topk, fp8, ElementType::kBf16);
    const BufferLayout one = computeBufferLayout(config, D * M, D * M, 1);
    const BufferLayout two = computeBufferLayout(config, D * M, D, M);
    EXPECT_EQ(one.netDispatchRowBytes, 0u);
    EXPECT_EQ(one.netDispatchSend, 0u);  // no two-hop regions with one domain
    // Signals per domain peer, meta one slot per domain.
    EXPECT_GE(two.meta - two.signals, sizeof(uint64_t) * kPhaseCount * D);
    EXPECT_GE(two.metaSlotBytes, sizeof(MetaHeader) + size_t{tokens} * topk * sizeof(MetaSelection));
    EXPECT_EQ(two.metaSlotBytes % 256, 0u);
    EXPECT_GE(two.dispatchRows - two.meta, M * two.metaSlotBytes);
    // A network dispatch row holds the staged row and, with FP8, its scales after a 16-byte pad.
    const size_t staged = fp8 ? hidden : size_t{hidden} * 2;
    const size_t scales = fp8 ? fp8BlockCount(hidden) * sizeof(float) : 0;
    EXPECT_EQ(two.netDispatchRowBytes, (staged + 15) / 16 * 16 + (scales + 15) / 16 * 16);
    EXPECT_EQ(two.netCombineGradOffset, (size_t{hidden} * 2 + 15) / 16 * 16);
    EXPECT_EQ(two.netCombineRowBytes, two.netCombineGradOffset + (topk * sizeof(float) + 15) / 16 * 16);
    EXPECT_EQ(two.netSlotRows, size_t{tokens});
    const size_t regions[] = {two.combineProbs, two.netDispatchSend, two.netDispatchRecv, two.netCombineSend,
                              two.netCombineRecv, two.total};
    for (size_t i = 0; i + 1 < std::size(regions); ++i) {
      EXPECT_EQ(regions[i] % 256, 0u) << "region " << i;
      EXPECT_LT(regions[i], regions[i + 1]) << "region " << i;
    }
    EXPECT_GE(two.netDispatchRecv - two.netDispatchSend, (M - 1) * size_t{tokens} * two.netDispatchRowBytes);
    EXPECT_GE(two.netCombineSend - two.netDispatchRecv, (M - 1) * size_t{tokens} * two.netDispatchRowBytes);
    EXPECT_GE(two.netCombineRecv - two.netCombineSend, (M - 1) * size_t{tokens} * two.netCombineRowBytes);
    EXPECT_GE(two.total - two.netCombineRecv, M * size_t{tokens} * two.netCombineRowBytes);
    EXPECT_LE(two.total - two.netCombineRecv, M * size_t{tokens} * two.netCombineRowBytes + 256);
  }
}

// The plan's staging figure (what nccl-moe-topo plan prints) is what the buffer really adds: the
// two-hop layout minus the one-domain layout of the same group, up to the signal slots (fewer per
// domain) and the 256-byte alignment of each region.
TEST(BufferLayout, PlanStagingIsWhatTheTwoHopRegionsAdd) {
  for (bool fp8 : {false, true})
    for (int hidden : {7168, 333}) {
      const int D = 4, M = 3, tokens = 300, topk = 8;
      const CommConfig config = configOf(D * M * 2, hidden, tokens, topk, fp8, ElementType::kBf16);
      const BufferLayout one = computeBufferLayout(config, D * M, D * M, 1);
      const BufferLayout two = computeBufferLayout(config, D * M, D, M);
      plan::CostShape shape;
      shape.experts = D * M * 2;
      shape.topk = topk;
      shape.tokensPerRank = tokens;
      shape.hidden = hidden;
      shape.fp8Dispatch = fp8;
      const int64_t staging = plan::twoHopStagingBytes(shape, D * M, M);
      const int64_t added = static_cast<int64_t>(two.total) - static_cast<int64_t>(one.total);
      EXPECT_NEAR(static_cast<double>(added), static_cast<double>(staging), 10 * 256.0) << "fp8 " << fp8 << " hidden " << hidden;
      EXPECT_EQ(plan::twoHopStagingBytes(shape, D * M, 1), 0);
    }
}

TEST(BufferLayout, GroupDimsFollowTheConfiguration) {
  const GroupDims dims = groupDimsOf(configOf(64, 7168, 4096, 8, true, ElementType::kFp32), 1);
  EXPECT_EQ(dims.experts, 64);
  EXPECT_EQ(dims.localExperts, 64);  // one rank in this config
  EXPECT_EQ(dims.metaWidth, 8);
  EXPECT_EQ(dims.scaleBlocks, 56);
  EXPECT_EQ(dims.rowType, static_cast<int>(ElementType::kFp32));
  EXPECT_EQ(dims.fp8, 1);
}

}  // namespace
}  // namespace nccl_moe
