// The windowed combine's host side: the configuration field (its default, the environment, the
// struct sizes of earlier releases), when the window takes effect, and what it saves in the buffer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/comm.h"
#include "core/config.h"
#include "kernels/window_ranges.h"
#include "misc/numerics.h"

namespace nccl_moe {
namespace {

ncclMoeConfig_t validConfig(int maxTokens) {
  ncclMoeConfig_t config = NCCL_MOE_CONFIG_INITIALIZER;
  config.numExperts = 64;
  config.hiddenSize = 7168;
  config.maxTokensPerRank = maxTokens;
  config.maxTopk = 8;
  return config;
}

CommConfig resolvedOrDie(const ncclMoeConfig_t& config) {
  CommConfig out;
  const Status status = resolveConfig(&config, 8, &out);
  EXPECT_TRUE(status.isOk()) << status.message();
  return out;
}

class CombineWindowConfig : public testing::Test {
 protected:
  void SetUp() override { unsetenv("NCCL_MOE_COMBINE_WINDOW_TOKENS"); }
  void TearDown() override { unsetenv("NCCL_MOE_COMBINE_WINDOW_TOKENS"); }
};

TEST_F(CombineWindowConfig, UnsetMeansTheEnvironmentsDefaultAndAnExplicitValueWins) {
  ncclMoeConfig_t config = validConfig(4096);
  EXPECT_EQ(resolvedOrDie(config).combineWindowTokens, 0);
  setenv("NCCL_MOE_COMBINE_WINDOW_TOKENS", "1024", 1);
  EXPECT_EQ(resolvedOrDie(config).combineWindowTokens, 1024);
  config.combineWindowTokens = 0;  // explicitly off, whatever the environment says
  EXPECT_EQ(resolvedOrDie(config).combineWindowTokens, 0);
  config.combineWindowTokens = 512;
  EXPECT_EQ(resolvedOrDie(config).combineWindowTokens, 512);
}

TEST_F(CombineWindowConfig, NegativeIsRefusedNamingTheField) {
  ncclMoeConfig_t config = validConfig(4096);
  config.combineWindowTokens = -3;
  CommConfig out;
  const Status status = resolveConfig(&config, 8, &out);
  EXPECT_EQ(status.code(), ncclInvalidArgument);
  EXPECT_NE(status.message().find("combineWindowTokens=-3"), std::string::npos) << status.message();
}

TEST_F(CombineWindowConfig, EarlierReleasesSizesAreAcceptedWithoutReadingPastThem) {
  ncclMoeConfig_t config = validConfig(4096);
  config.combineWindowTokens = 99;  // past a second-release caller's struct: never read
  config.size = offsetof(ncclMoeConfig_t, combineWindowTokens);
  EXPECT_EQ(resolvedOrDie(config).combineWindowTokens, 0);
  setenv("NCCL_MOE_COMBINE_WINDOW_TOKENS", "256", 1);  // such a caller still gets the environment's
  EXPECT_EQ(resolvedOrDie(config).combineWindowTokens, 256);
  config.size = offsetof(ncclMoeConfig_t, lowLatencyMaxTokens);  // the first release
  EXPECT_EQ(resolvedOrDie(config).combineWindowTokens, 256);
  config.size = offsetof(ncclMoeConfig_t, combineWindowTokens) + 2;  // no release's size
  CommConfig out;
  EXPECT_EQ(resolveConfig(&config, 8, &out).code(), ncclInvalidArgument);
}

CommConfig windowConfig(int maxTokens, int window) {
  CommConfig config;
  config.shape = GroupShape{8, 256, 7168, maxTokens, 8};
  config.combineWindowTokens = window;
  return config;
}

TEST(CombineWindow, TakesEffectWithOneDomainWhenTwoWindowsAreSmallerThanTheCall) {
  EXPECT_EQ(combineWindowOf(windowConfig(4096, 0), 1), 4096);     // off
  EXPECT_EQ(combineWindowOf(windowConfig(4096, 1024), 1), 1024);
  EXPECT_EQ(combineWindowOf(windowConfig(4096, 2047), 1), 2047);
  EXPECT_EQ(combineWindowOf(windowConfig(4096, 2048), 1), 4096);  // two windows would hold every token
  EXPECT_EQ(combineWindowOf(windowConfig(4096, 9000), 1), 4096);
  EXPECT_EQ(combineWindowOf(windowConfig(4096, 1), 1), 1);
  EXPECT_EQ(combineWindowOf(windowConfig(4096, 1024), 2), 4096);  // two-hop: no windows
  EXPECT_EQ(groupDimsOf(windowConfig(4096, 1024), 1).combineWindow, 1024);
  EXPECT_EQ(groupDimsOf(windowConfig(4096, 1024), 4).combineWindow, 4096);
}

TEST(CombineWindow, LandingAreaHoldsTwoWindowsPerSourceRank) {
  const int ranks = 8, tokens = 4096;
  const size_t rowBytes = 7168 * 2;
  const BufferLayout full = computeBufferLayout(windowConfig(tokens, 0), ranks, ranks, 1);
  EXPECT_GE(full.combineProbs - full.combineRows, size_t{ranks} * tokens * rowBytes);
  for (int window : {1, 3, 1000, 1024, 2047}) {
    const BufferLayout windowed = computeBufferLayout(windowConfig(tokens, window), ranks, ranks, 1);
    const size_t landing = size_t{ranks} * 2 * window * rowBytes;
    EXPECT_GE(windowed.combineProbs - windowed.combineRows, landing) << window;
    EXPECT_LT(windowed.combineProbs - windowed.combineRows, landing + 256) << window;
    // Everything else stays: the probs gradients are still one set per pair slot.
    EXPECT_EQ(windowed.combineRows, full.combineRows);
    EXPECT_EQ(windowed.total - windowed.combineProbs, full.total - full.combineProbs);
    EXPECT_NEAR(static_cast<double>(full.total - windowed.total),
                static_cast<double>(size_t{ranks} * (tokens - 2 * window) * rowBytes), 256.0);
  }
  // EP8, 4096 tokens of 7168 BF16 channels: 506 MiB per rank without windows; windows of 1024
  // tokens per source rank take the landing area from 448 to 224 MiB.
  const BufferLayout ep8 = computeBufferLayout(windowConfig(tokens, 1024), ranks, ranks, 1);
  EXPECT_NEAR(static_cast<double>(full.total) / (1 << 20), 505.8, 0.5);
  EXPECT_NEAR(static_cast<double>(ep8.total) / (1 << 20), 505.8 - 448 + 224, 0.5);
  // Two domains keep the whole landing area (the two-hop combine has no windows).
  const BufferLayout twoHop = computeBufferLayout(windowConfig(tokens, 1024), ranks, ranks / 2, 2);
  EXPECT_GE(twoHop.combineProbs - twoHop.combineRows, size_t{ranks} * tokens * rowBytes);
}

// The kernel's window ranges (kernels/window_ranges.h) against the standard library on random
// data: a source's slots in token order with repeats and gaps, windows that start before, inside
// and after them, ranges of every source with empty ones among them.
TEST(CombineWindowRanges, FirstIndexAtLeastIsTheLowerBound) {
  std::mt19937 rng(7);
  for (int round = 0; round < 500; ++round) {
    std::vector<int64_t> tokens(rng() % 40);
    int64_t token = rng() % 5;
    for (int64_t& t : tokens) t = token += rng() % 3;  // non-decreasing, repeats and gaps
    const int64_t lo = tokens.empty() ? 0 : rng() % (tokens.size() + 1);
    const int64_t hi = lo + (tokens.size() > static_cast<size_t>(lo) ? rng() % (tokens.size() - lo + 1) : 0);
    const int64_t value = static_cast<int64_t>(rng() % 100) - 5;
    const int64_t want = std::lower_bound(tokens.begin() + lo, tokens.begin() + hi, value) - tokens.begin();
    EXPECT_EQ(firstIndexAtLeast(lo, hi, value, [&](int64_t i) { return tokens[i]; }), want)
        << "lo " << lo << " hi " << hi << " value " << value;
  }
}

TEST(CombineWindowRanges, SourceHoldingFindsTheRangeOfEveryIndex) {
  std::mt19937 rng(11);
  for (int ranks : {1, 2, 3, 7, 8, 64, 100, 127, 128}) {
    for (int round = 0; round < 20; ++round) {
      std::vector<int64_t> prefix(ranks + 1, 0);
      for (int s = 0; s < ranks; ++s) prefix[s + 1] = prefix[s] + (rng() % 3 == 0 ? 0 : rng() % 6);  // empties too
      for (int64_t i = 0; i < prefix[ranks]; ++i) {
        int want = 0;
        while (!(prefix[want] <= i && i < prefix[want + 1])) ++want;
        EXPECT_EQ(sourceHolding(prefix.data(), ranks, 128, i), want) << "ranks " << ranks << " index " << i;
      }
    }
  }
}

}  // namespace
}  // namespace nccl_moe
