// The low-latency (LL) mode's CPU oracle and byte arithmetic (docs/low_latency.md): hand-computed
// groups, properties on random routings, the two-hop node-deduplicated model and its combine
// order, the LL buffer formula against a slot-by-slot count, and the network byte model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include "../support/group_case.h"
#include "plan/low_latency_shape.h"
#include "reference/fp8.h"
#include "reference/low_latency.h"

namespace nccl_moe::test {
namespace {

RankRouting topkRouting(int tokens, int topk, std::vector<int64_t> ids, std::vector<float> probs = {}) {
  RankRouting routing;
  routing.format = RoutingFormat::kTopk;
  routing.numTokens = tokens;
  routing.topk = topk;
  routing.topkIdx = std::move(ids);
  routing.topkProbs = std::move(probs);
  routing.withProbs = !routing.topkProbs.empty();
  return routing;
}

// x[s] row t, channel c = s + t/2 + c/8: small multiples of 1/8, so every product and sum the hand
// cases form is exact in bf16.
HostRows handRows(int s, int tokens, int hidden) {
  HostRows x(ElementType::kBf16, tokens, hidden);
  for (int t = 0; t < tokens; ++t)
    for (int c = 0; c < hidden; ++c) x.set(t, c, s + 0.5f * t + 0.125f * c);
  return x;
}

LowLatencyShape handShape(int tokens) {
  LowLatencyShape shape;
  shape.ranks = 2;
  shape.experts = 4;
  shape.hidden = 4;
  shape.maxTopk = 2;
  shape.maxTokens = tokens;
  return shape;
}

// Expert e's output for a received row: (e + 1) x the row.
std::vector<HostRows> scaledByExpert(const LowLatencyShape& shape, const std::vector<LowLatencyRankOutput>& out) {
  const int L = shape.localExperts();
  const int64_t P = shape.segmentRows();
  std::vector<HostRows> y;
  for (int d = 0; d < shape.ranks; ++d) {
    HostRows rows(ElementType::kBf16, L * P, shape.hidden);
    for (int l = 0; l < L; ++l)
      for (int64_t i = 0; i < out[d].layout.counts[l]; ++i)
        for (int c = 0; c < shape.hidden; ++c)
          rows.set(l * P + i, c, (d * L + l + 1) * out[d].x.get(l * P + i, c));
    y.push_back(std::move(rows));
  }
  return y;
}

void expectRowIs(const LowLatencyRankOutput& out, const LowLatencyShape& shape, int l, int i, int s,
                 int t, int k, const HostRows& src) {
  const int64_t row = l * shape.segmentRows() + i;
  EXPECT_EQ(out.layout.srcInfo[row * 3 + 0], s) << "segment " << l << " row " << i;
  EXPECT_EQ(out.layout.srcInfo[row * 3 + 1], t) << "segment " << l << " row " << i;
  EXPECT_EQ(out.layout.srcInfo[row * 3 + 2], k) << "segment " << l << " row " << i;
  EXPECT_EQ(0, std::memcmp(out.x.row(row), src.row(t), out.x.rowBytes())) << "segment " << l << " row " << i;
}

// 2 ranks, 2 experts each, K = 2 with masked slots, T = 2 and 3. Every output field by hand.
TEST(LowLatencyHand, TwoRanksUnevenTokensEveryField) {
  const LowLatencyShape shape = handShape(3);
  const float nan = std::nanf("");
  const std::vector<RankRouting> routings = {
      topkRouting(2, 2, {3, -1, /**/ 0, 2}),
      topkRouting(3, 2, {1, 0, /**/ -1, -1, /**/ 2, 3}),
  };
  const std::vector<HostRows> x = {handRows(0, 2, 4), handRows(1, 3, 4)};
  std::vector<LowLatencyRankOutput> out;
  ASSERT_TRUE(lowLatencyDispatch(shape, routings, x, &out).isOk());
  ASSERT_EQ(out.size(), 2u);
  // P = R x N = 6 rows per segment; every segment sorted by (source rank, token).
  EXPECT_EQ(out[0].x.rows(), 12);
  EXPECT_EQ(out[0].layout.counts, (std::vector<int32_t>{2, 1}));
  EXPECT_EQ(out[1].layout.counts, (std::vector<int32_t>{2, 2}));
  expectRowIs(out[0], shape, 0, 0, 0, 1, 0, x[0]);  // expert 0: rank 0 token 1 slot 0
  expectRowIs(out[0], shape, 0, 1, 1, 0, 1, x[1]);  //           rank 1 token 0 slot 1
  expectRowIs(out[0], shape, 1, 0, 1, 0, 0, x[1]);  // expert 1: rank 1 token 0 slot 0
  expectRowIs(out[1], shape, 0, 0, 0, 1, 1, x[0]);  // expert 2: rank 0 token 1 slot 1
  expectRowIs(out[1], shape, 0, 1, 1, 2, 0, x[1]);  //           rank 1 token 2 slot 0
  expectRowIs(out[1], shape, 1, 0, 0, 0, 0, x[0]);  // expert 3: rank 0 token 0 slot 0
  expectRowIs(out[1], shape, 1, 1, 1, 2, 1, x[1]);  //           rank 1 token 2 slot 1
  EXPECT_TRUE(out[0].scales.empty());
  // Past the counts the oracle holds -1 and zero rows (the device writes nothing there).
  EXPECT_EQ(out[0].layout.srcInfo[(1 * 6 + 1) * 3], -1);
  EXPECT_EQ(out[0].x.get(1 * 6 + 1, 0), 0.0f);

  // Weighted combine, expert e multiplies by e + 1; masked slots' weights (NaN) are never read.
  const std::vector<HostRows> y = scaledByExpert(shape, out);
  const std::vector<std::vector<float>> weights = {{0.5f, nan, 0.25f, 0.75f},
                                                   {1.0f, 2.0f, nan, nan, 0.5f, 0.5f}};
  std::vector<HostRows> combined;
  const std::vector<LowLatencyLayout> layouts = {out[0].layout, out[1].layout};
  ASSERT_TRUE(lowLatencyCombine(shape, routings, layouts, y, &weights, &combined).isOk());
  // rank 0: t0 = 0.5*4 x, t1 = 0.25*1 x + 0.75*3 x; rank 1: t0 = 1*2 x + 2*1 x, t1 = nothing,
  // t2 = 0.5*3 x + 0.5*4 x.
  const std::vector<std::vector<float>> weighted = {{2.0f, 2.5f}, {4.0f, 0.0f, 3.5f}};
  const std::vector<std::vector<float>> plain = {{4.0f, 4.0f}, {3.0f, 0.0f, 7.0f}};
  std::vector<HostRows> unweighted;
  ASSERT_TRUE(lowLatencyCombine(shape, routings, layouts, y, nullptr, &unweighted).isOk());
  for (int s = 0; s < 2; ++s) {
    ASSERT_EQ(combined[s].rows(), routings[s].numTokens);
    ASSERT_EQ(combined[s].type(), ElementType::kBf16);
    for (int t = 0; t < routings[s].numTokens; ++t)
      for (int c = 0; c < 4; ++c) {
        EXPECT_EQ(combined[s].get(t, c), weighted[s][t] * x[s].get(t, c)) << s << "," << t << "," << c;
        EXPECT_EQ(unweighted[s].get(t, c), plain[s][t] * x[s].get(t, c)) << s << "," << t << "," << c;
      }
  }
  // A token with no valid slot gives +0.
  for (int c = 0; c < 4; ++c) EXPECT_EQ(floatToBf16(combined[1].get(1, c)), 0x0000);
}

TEST(LowLatencyHand, EmptyRankSendsNothingAndGetsAnEmptyOutput) {
  const LowLatencyShape shape = handShape(2);
  const std::vector<RankRouting> routings = {topkRouting(0, 2, {}),
                                             topkRouting(2, 2, {0, -1, /**/ -1, 3})};
  const std::vector<HostRows> x = {handRows(0, 0, 4), handRows(1, 2, 4)};
  std::vector<LowLatencyRankOutput> out;
  ASSERT_TRUE(lowLatencyDispatch(shape, routings, x, &out).isOk());
  EXPECT_EQ(out[0].layout.counts, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(out[1].layout.counts, (std::vector<int32_t>{0, 1}));
  expectRowIs(out[0], shape, 0, 0, 1, 0, 0, x[1]);
  expectRowIs(out[1], shape, 1, 0, 1, 1, 1, x[1]);
  const std::vector<HostRows> y = scaledByExpert(shape, out);
  std::vector<HostRows> combined;
  ASSERT_TRUE(lowLatencyCombine(shape, routings, {out[0].layout, out[1].layout}, y, nullptr, &combined).isOk());
  EXPECT_EQ(combined[0].rows(), 0);
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ(combined[1].get(0, c), 1.0f * x[1].get(0, c));
    EXPECT_EQ(combined[1].get(1, c), 4.0f * x[1].get(1, c));
  }
}

// ---- Properties on random routings -------------------------------------------------------------

struct LlScenario {
  const char* name;
  int ranks, ranksPerDomain, experts, hidden, topk, maxTokens;
  double masked;
};

std::vector<LlScenario> llScenarios() {
  return {
      {"r2-one-domain", 2, 2, 4, 8, 2, 5, 0.25},
      {"r4-two-domains-odd-hidden", 4, 2, 16, 129, 4, 7, 0.2},
      {"r8-two-domains", 8, 4, 32, 64, 8, 6, 0.1},
      {"r8-four-domains", 8, 2, 16, 33, 5, 9, 0.3},
      {"r6-three-domains-top1", 6, 2, 12, 16, 1, 4, 0.0},
  };
}

struct LlGroup {
  LowLatencyShape shape;
  std::vector<RankRouting> routings;
  std::vector<HostRows> x;
  std::vector<std::vector<float>> weights;  // the routings' probs: sum to 1 over the kept slots
};

LlGroup makeLlGroup(const LlScenario& sc, bool fp8, bool pow2, std::mt19937_64& rng) {
  LlGroup g;
  g.shape = {sc.ranks, sc.ranksPerDomain, sc.experts, sc.hidden, sc.topk, sc.maxTokens, fp8, pow2};
  std::vector<int> tokens(sc.ranks);
  std::uniform_int_distribution<int> pick(0, sc.maxTokens);
  for (int r = 0; r < sc.ranks; ++r) tokens[r] = pick(rng);
  tokens[1] = 0;                   // an empty rank
  tokens[0] = sc.maxTokens;        // a full one
  RoutingRecipe recipe;
  recipe.topk = sc.topk;
  recipe.maskedFraction = sc.masked;
  GroupCase group = makeGroupCase({sc.ranks, sc.experts, sc.hidden, sc.maxTokens, sc.topk}, tokens,
                                  recipe, RoutingFormat::kTopk, ElementType::kBf16, rng);
  g.routings = std::move(group.routings);
  g.x = std::move(group.x);
  for (const RankRouting& routing : g.routings) g.weights.push_back(routing.topkProbs);
  return g;
}

class LowLatencyProperty : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    rng_.seed(testSeed());
    scenario_ = llScenarios()[GetParam()];
  }
  std::mt19937_64 rng_;
  LlScenario scenario_{};
};

TEST_P(LowLatencyProperty, EverySelectionLandsOnceSortedAndBitExact) {
  for (int mode = 0; mode < 3; ++mode) {  // BF16, FP8, FP8 with power-of-two scales
    const bool fp8 = mode > 0;
    LlGroup g = makeLlGroup(scenario_, fp8, mode == 2, rng_);
    const LowLatencyShape& shape = g.shape;
    std::vector<LowLatencyRankOutput> out;
    ASSERT_TRUE(lowLatencyDispatch(shape, g.routings, g.x, &out).isOk());
    const int R = shape.ranks, L = shape.localExperts(), H = shape.hidden, B = shape.scaleBlocks();
    const int64_t P = shape.segmentRows();
    // Every received row, keyed by (s, t, k): must be exactly the valid selections.
    std::set<std::tuple<int, int, int>> seen;
    std::vector<uint8_t> q(H);
    std::vector<float> values(H), scales(B);
    for (int d = 0; d < R; ++d) {
      const LowLatencyRankOutput& rank = out[d];
      ASSERT_EQ(rank.x.type(), fp8 ? ElementType::kE4m3 : ElementType::kBf16);
      ASSERT_EQ(rank.x.rows(), L * P);
      ASSERT_EQ(rank.scales.size(), fp8 ? static_cast<size_t>(L) * B * shape.scalePlaneRows() : 0u);
      for (int l = 0; l < L; ++l) {
        int count = 0;  // the selections of expert d*L + l, straight from the routings
        for (int s = 0; s < R; ++s)
          for (int64_t e : g.routings[s].topkIdx) count += e == d * L + l;
        ASSERT_EQ(rank.layout.counts[l], count);
        for (int i = 0; i < count; ++i) {
          const int64_t row = l * P + i;
          const int s = rank.layout.srcInfo[row * 3], t = rank.layout.srcInfo[row * 3 + 1],
                    k = rank.layout.srcInfo[row * 3 + 2];
          ASSERT_EQ(g.routings[s].topkIdx[static_cast<size_t>(t) * shape.maxTopk + k], d * L + l);
          ASSERT_TRUE(seen.insert({s, t, k}).second);
          if (i > 0) {
            const int ps = rank.layout.srcInfo[(row - 1) * 3], pt = rank.layout.srcInfo[(row - 1) * 3 + 1];
            ASSERT_TRUE(ps < s || (ps == s && pt < t)) << "segment not sorted by (rank, token)";
          }
          if (!fp8) {
            ASSERT_EQ(0, std::memcmp(rank.x.row(row), g.x[s].row(t), rank.x.rowBytes()));
            continue;
          }
          for (int c = 0; c < H; ++c) values[c] = g.x[s].get(t, c);
          quantizeRowE4m3(values.data(), H, mode == 2, q.data(), scales.data());
          ASSERT_EQ(0, std::memcmp(rank.x.row(row), q.data(), H));
          for (int b = 0; b < B; ++b) {
            const float scale = rank.scales[lowLatencyScaleIndex(shape, l, i, b)];
            ASSERT_EQ(scale, scales[b]);
            if (mode == 2) {
              ASSERT_EQ(ue8m0ToScale(scaleToUe8m0(scale)), scale);
            }
          }
        }
        for (int64_t i = count; i < P; ++i) ASSERT_EQ(rank.layout.srcInfo[(l * P + i) * 3], -1);
      }
    }
    size_t valid = 0;
    for (const RankRouting& routing : g.routings)
      for (int64_t e : routing.topkIdx) valid += e >= 0;
    EXPECT_EQ(seen.size(), valid);
  }
}

// Identity experts, weights summing to 1: out = x up to one bf16 rounding per node partial and
// one of the result (docs/low_latency.md): |out - x| <= roundings x 2^-8 x |x| + fp32 slack.
TEST_P(LowLatencyProperty, IdentityRoundTripReproducesTokens) {
  LlGroup g = makeLlGroup(scenario_, false, false, rng_);
  std::vector<LowLatencyRankOutput> out;
  ASSERT_TRUE(lowLatencyDispatch(g.shape, g.routings, g.x, &out).isOk());
  std::vector<HostRows> y;
  std::vector<LowLatencyLayout> layouts;
  for (LowLatencyRankOutput& rank : out) {
    y.push_back(rank.x);
    layouts.push_back(rank.layout);
  }
  std::vector<HostRows> combined;
  ASSERT_TRUE(lowLatencyCombine(g.shape, g.routings, layouts, y, &g.weights, &combined).isOk());
  const int roundings = g.shape.domains() > 1 ? 2 : 1;
  for (int s = 0; s < g.shape.ranks; ++s) {
    const RankRouting& routing = g.routings[s];
    for (int t = 0; t < routing.numTokens; ++t) {
      bool any = false;
      for (int k = 0; k < routing.topk; ++k) any |= routing.topkIdx[t * routing.topk + k] >= 0;
      for (int c = 0; c < g.shape.hidden; ++c) {
        const float want = any ? g.x[s].get(t, c) : 0.0f;
        const float bound = std::fabs(want) * (roundings * 0x1p-8f * (1 + 0x1p-7f) + 0x1p-20f);
        ASSERT_LE(std::fabs(combined[s].get(t, c) - want), bound) << s << "," << t << "," << c;
      }
    }
  }
}

// The documented order, computed here directly: per destination domain in ascending order, the
// fmaf chain over its slots in slot order from +0, rounded to bf16; the first such partial, plus
// each later one in fp32; the result rounded to bf16. Unweighted = all weights 1, bit for bit.
TEST_P(LowLatencyProperty, CombineFollowsTheDocumentedOrder) {
  LlGroup g = makeLlGroup(scenario_, false, false, rng_);
  const LowLatencyShape& shape = g.shape;
  std::vector<LowLatencyRankOutput> out;
  ASSERT_TRUE(lowLatencyDispatch(shape, g.routings, g.x, &out).isOk());
  // Expert outputs: random bf16 rows (not a function of x), so every order difference shows.
  std::vector<HostRows> y;
  std::vector<LowLatencyLayout> layouts;
  for (LowLatencyRankOutput& rank : out) {
    y.push_back(randomRows(ElementType::kBf16, rank.x.rows(), shape.hidden, 3.0f, rng_));
    layouts.push_back(rank.layout);
  }
  std::vector<std::vector<float>> ones;
  for (const RankRouting& routing : g.routings) ones.emplace_back(routing.topkIdx.size(), 1.0f);
  std::vector<HostRows> weighted, unweighted, allOnes;
  ASSERT_TRUE(lowLatencyCombine(shape, g.routings, layouts, y, &g.weights, &weighted).isOk());
  ASSERT_TRUE(lowLatencyCombine(shape, g.routings, layouts, y, nullptr, &unweighted).isOk());
  ASSERT_TRUE(lowLatencyCombine(shape, g.routings, layouts, y, &ones, &allOnes).isOk());
  LowLatencyShape flat = shape;
  flat.ranksPerDomain = 0;
  std::vector<HostRows> oneDomain;
  ASSERT_TRUE(lowLatencyCombine(flat, g.routings, layouts, y, &g.weights, &oneDomain).isOk());

  const int L = shape.localExperts(), D = shape.domainSize();
  const int64_t P = shape.segmentRows();
  // Row of (s, t, k), found by scanning the segment of its expert.
  auto rowOf = [&](int s, int t, int k, int e) {
    const int d = e / L, l = e % L;
    for (int i = 0; i < layouts[d].counts[l]; ++i) {
      const int32_t* info = &layouts[d].srcInfo[(l * P + i) * 3];
      if (info[0] == s && info[1] == t && info[2] == k) return l * P + i;
    }
    return int64_t{-1};
  };
  for (int s = 0; s < shape.ranks; ++s) {
    const RankRouting& routing = g.routings[s];
    const int K = routing.topk;
    for (int t = 0; t < routing.numTokens; ++t) {
      std::set<int> domainsHit;
      for (int k = 0; k < K; ++k)
        if (routing.topkIdx[t * K + k] >= 0) domainsHit.insert(static_cast<int>(routing.topkIdx[t * K + k]) / L / D);
      for (int c = 0; c < shape.hidden; ++c) {
        float total = 0, totalOnes = 0, chain = 0;
        bool first = true;
        for (int m : domainsHit) {
          float partial = 0, partialOnes = 0;
          for (int k = 0; k < K; ++k) {
            const int e = static_cast<int>(routing.topkIdx[t * K + k]);
            if (e < 0 || e / L / D != m) continue;
            const float v = y[e / L].get(rowOf(s, t, k, e), c);
            partial = std::fma(g.weights[s][t * K + k], v, partial);
            partialOnes = partialOnes + v;
          }
          partial = bf16ToFloat(floatToBf16(partial));
          partialOnes = bf16ToFloat(floatToBf16(partialOnes));
          total = first ? partial : total + partial;
          totalOnes = first ? partialOnes : totalOnes + partialOnes;
          first = false;
        }
        for (int k = 0; k < K; ++k) {
          const int e = static_cast<int>(routing.topkIdx[t * K + k]);
          if (e >= 0) chain = std::fma(g.weights[s][t * K + k], y[e / L].get(rowOf(s, t, k, e), c), chain);
        }
        ASSERT_EQ(floatToBf16(weighted[s].get(t, c)), floatToBf16(total)) << s << "," << t << "," << c;
        ASSERT_EQ(floatToBf16(unweighted[s].get(t, c)), floatToBf16(totalOnes)) << s << "," << t << "," << c;
        ASSERT_EQ(floatToBf16(allOnes[s].get(t, c)), floatToBf16(unweighted[s].get(t, c)));
        ASSERT_EQ(floatToBf16(oneDomain[s].get(t, c)), floatToBf16(chain)) << s << "," << t << "," << c;
        // A token whose experts all live in one domain gets the one-domain bits.
        if (domainsHit.size() == 1) {
          ASSERT_EQ(floatToBf16(weighted[s].get(t, c)), floatToBf16(oneDomain[s].get(t, c)));
        }
      }
    }
  }
}

// Backward: combine's backward is a dispatch of the gradient (scaled per row by w_k when weighted);
// dispatch's backward is the unweighted combine. Checked as adjoints: <combine(y), g> = <y, combine^T(g)>.
TEST_P(LowLatencyProperty, BackwardPairsAreAdjoint) {
  LlGroup g = makeLlGroup(scenario_, false, false, rng_);
  const LowLatencyShape& shape = g.shape;
  std::vector<LowLatencyRankOutput> out;
  ASSERT_TRUE(lowLatencyDispatch(shape, g.routings, g.x, &out).isOk());
  std::vector<HostRows> gradOut, plainRows, weightedRows;
  for (const RankRouting& routing : g.routings)
    gradOut.push_back(randomRows(ElementType::kBf16, routing.numTokens, shape.hidden, 1.0f, rng_));
  ASSERT_TRUE(lowLatencyCombineBackward(shape, g.routings, gradOut, nullptr, &plainRows).isOk());
  ASSERT_TRUE(lowLatencyCombineBackward(shape, g.routings, gradOut, &g.weights, &weightedRows).isOk());
  std::vector<LowLatencyRankOutput> dispatchedGrad;
  ASSERT_TRUE(lowLatencyDispatch(shape, g.routings, gradOut, &dispatchedGrad).isOk());
  const int L = shape.localExperts();
  const int64_t P = shape.segmentRows();
  std::vector<HostRows> y;
  std::vector<LowLatencyLayout> layouts;
  for (int d = 0; d < shape.ranks; ++d) {
    EXPECT_EQ(plainRows[d].bytes(), dispatchedGrad[d].x.bytes()) << "unweighted backward = BF16 dispatch";
    for (int l = 0; l < L; ++l)
      for (int i = 0; i < out[d].layout.counts[l]; ++i) {
        const int32_t* info = &out[d].layout.srcInfo[(l * P + i) * 3];
        const float w = g.weights[info[0]][info[1] * shape.maxTopk + info[2]];
        for (int c = 0; c < shape.hidden; ++c)
          ASSERT_EQ(floatToBf16(weightedRows[d].get(l * P + i, c)),
                    floatToBf16(w * gradOut[info[0]].get(info[1], c)));
      }
    y.push_back(randomRows(ElementType::kBf16, L * P, shape.hidden, 1.0f, rng_));
    layouts.push_back(out[d].layout);
  }
  std::vector<HostRows> combined;
  ASSERT_TRUE(lowLatencyCombine(shape, g.routings, layouts, y, &g.weights, &combined).isOk());
  double lhs = 0, rhs = 0, scale = 0;
  for (int s = 0; s < shape.ranks; ++s)
    for (int t = 0; t < g.routings[s].numTokens; ++t)
      for (int c = 0; c < shape.hidden; ++c) {
        lhs += static_cast<double>(combined[s].get(t, c)) * gradOut[s].get(t, c);
        scale += std::fabs(combined[s].get(t, c) * gradOut[s].get(t, c));
      }
  for (int d = 0; d < shape.ranks; ++d)
    for (int l = 0; l < L; ++l)
      for (int i = 0; i < out[d].layout.counts[l]; ++i)
        for (int c = 0; c < shape.hidden; ++c)
          rhs += static_cast<double>(y[d].get(l * P + i, c)) * weightedRows[d].get(l * P + i, c);
  EXPECT_NEAR(lhs, rhs, 1e-2 * (1 + scale));
}

// Two-hop: one network row per distinct (token, destination domain other than the source's), to
// the source's rail peer there, carrying the slots and ranks of that domain.
TEST_P(LowLatencyProperty, NodeDeduplicationSendsOneRowPerTokenAndDomain) {
  LlGroup g = makeLlGroup(scenario_, false, false, rng_);
  const LowLatencyShape& shape = g.shape;
  LowLatencyTwoHop plan;
  ASSERT_TRUE(lowLatencyTwoHop(shape, g.routings, &plan).isOk());
  const int R = shape.ranks, M = shape.domains(), D = shape.domainSize(), L = shape.localExperts();
  int64_t pairs = 0;
  std::vector<int64_t> relayed(R, 0);
  for (int s = 0; s < R; ++s) {
    const RankRouting& routing = g.routings[s];
    for (int m = 0; m < M; ++m) {
      std::vector<int> tokens;  // tokens of s with an expert in domain m, found directly
      for (int t = 0; t < routing.numTokens; ++t)
        for (int k = 0; k < routing.topk; ++k) {
          const int64_t e = routing.topkIdx[t * routing.topk + k];
          if (e >= 0 && e / L / D == m && m != s / D) {
            tokens.push_back(t);
            break;
          }
        }
      pairs += static_cast<int64_t>(tokens.size());
      relayed[m * D + s % D] += static_cast<int64_t>(tokens.size());
      const std::vector<LowLatencyNetworkRow>& rows = plan.network[s][m];
      ASSERT_EQ(rows.size(), tokens.size()) << "rank " << s << " domain " << m;
      for (size_t i = 0; i < rows.size(); ++i) {
        ASSERT_EQ(rows[i].srcToken, tokens[i]);
        std::vector<int32_t> slots, ranks;
        for (int k = 0; k < routing.topk; ++k) {
          const int64_t e = routing.topkIdx[tokens[i] * routing.topk + k];
          if (e >= 0 && e / L / D == m) {
            slots.push_back(k);
            ranks.push_back(static_cast<int32_t>(e / L));
          }
        }
        std::sort(ranks.begin(), ranks.end());
        ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
        EXPECT_EQ(rows[i].slots, slots);
        EXPECT_EQ(rows[i].dstRanks, ranks);
      }
    }
  }
  EXPECT_EQ(plan.networkRows, pairs);
  EXPECT_EQ(plan.networkRowsRelayed, relayed);
  if (M == 1) {
    EXPECT_EQ(plan.networkRows, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Groups, LowLatencyProperty, ::testing::Range(0, static_cast<int>(llScenarios().size())),
                         [](const ::testing::TestParamInfo<int>& param) {
                           std::string name = llScenarios()[param.param].name;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(LowLatencyEdges, AllTokensToOneExpertFillItsSegment) {
  LowLatencyShape shape{4, 2, 8, 16, 2, 5, false, false};
  std::mt19937_64 rng(testSeed());
  std::vector<RankRouting> routings;
  std::vector<HostRows> x;
  for (int s = 0; s < 4; ++s) {
    std::vector<int64_t> ids;
    for (int t = 0; t < 5; ++t) ids.insert(ids.end(), {5, -1});  // expert 5: rank 2, local 1
    routings.push_back(topkRouting(5, 2, ids));
    x.push_back(randomRows(ElementType::kBf16, 5, 16, 2.0f, rng));
  }
  std::vector<LowLatencyRankOutput> out;
  ASSERT_TRUE(lowLatencyDispatch(shape, routings, x, &out).isOk());
  const int64_t P = shape.segmentRows();
  EXPECT_EQ(out[2].layout.counts, (std::vector<int32_t>{0, 20}));  // the whole segment: R x N
  for (int d : {0, 1, 3}) EXPECT_EQ(out[d].layout.counts, (std::vector<int32_t>{0, 0}));
  for (int i = 0; i < 20; ++i) expectRowIs(out[2], shape, 1, i, i / 5, i % 5, 0, x[i / 5]);
  EXPECT_EQ(P, 20);
  // Combine with weight 0.5 on every token: the two domains do not matter with one expert.
  std::vector<HostRows> y(4, HostRows(ElementType::kBf16, 2 * P, 16));
  y[2] = out[2].x;
  std::vector<std::vector<float>> weights(4, std::vector<float>(10, 0.5f));
  std::vector<LowLatencyLayout> layouts;
  for (const LowLatencyRankOutput& rank : out) layouts.push_back(rank.layout);
  std::vector<HostRows> combined;
  ASSERT_TRUE(lowLatencyCombine(shape, routings, layouts, y, &weights, &combined).isOk());
  for (int s = 0; s < 4; ++s)
    for (int t = 0; t < 5; ++t)
      for (int c = 0; c < 16; ++c) ASSERT_EQ(combined[s].get(t, c), 0.5f * x[s].get(t, c));
}

TEST(LowLatencyErrors, LimitsAndShapesAreRefusedAndNothingIsWritten) {
  LowLatencyShape shape = handShape(2);
  const std::vector<HostRows> x = {handRows(0, 3, 4), handRows(1, 1, 4)};
  const std::vector<RankRouting> routings = {topkRouting(3, 2, {0, 1, 2, 3, -1, 0}), topkRouting(1, 2, {1, -1})};
  std::vector<LowLatencyRankOutput> out(1);
  out[0].layout.counts = {42};
  Status status = lowLatencyDispatch(shape, routings, x, &out);
  EXPECT_EQ(status.code(), ncclInvalidArgument);
  EXPECT_NE(status.message().find("lowLatencyMaxTokens=2"), std::string::npos) << status.message();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].layout.counts, (std::vector<int32_t>{42}));

  shape.maxTokens = 3;
  EXPECT_TRUE(lowLatencyDispatch(shape, routings, x, &out).isOk());
  for (int bad : {0, -1, LowLatencyLimits::kMaxTokens + 1}) {
    shape.maxTokens = bad;
    EXPECT_EQ(checkLowLatencyShape(shape).code(), ncclInvalidArgument) << bad;
  }
  shape.maxTokens = LowLatencyLimits::kMaxTokens;
  EXPECT_TRUE(checkLowLatencyShape(shape).isOk());
  shape.powerOfTwoScales = true;
  EXPECT_FALSE(checkLowLatencyShape(shape).isOk());
  shape = handShape(3);
  shape.ranksPerDomain = 3;
  EXPECT_FALSE(checkLowLatencyShape(shape).isOk());
  // The send half numbers a call's rows in one block's shared memory: 8 bytes per expert and 2 per
  // (token, slot). The largest N and maxTopk 8 fit with 256 experts; 32768 experts do not.
  const LowLatencyShape fits{8, 8, 256, 7168, 8, LowLatencyLimits::kMaxTokens, false, false};
  EXPECT_TRUE(checkLowLatencyShape(fits).isOk());
  EXPECT_EQ(lowLatencySendSharedBytes(256, 1024, 8), 8 * 256 + 2 * 1024 * 8);
  const LowLatencyShape tooMany{8, 8, 32768, 7168, 8, 1, false, false};
  const Status refused = checkLowLatencyShape(tooMany);
  EXPECT_EQ(refused.code(), ncclInvalidArgument);
  EXPECT_NE(refused.message().find("numExperts=32768"), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find("262160 bytes, more than its 163840"), std::string::npos) << refused.message();
  shape = handShape(3);
  // K above maxTopk, K differing across ranks, the map format, x not bf16.
  EXPECT_FALSE(lowLatencyDispatch(shape, {topkRouting(1, 3, {0, 1, 2}), topkRouting(0, 3, {})},
                                  {handRows(0, 1, 4), handRows(1, 0, 4)}, &out).isOk());
  EXPECT_FALSE(lowLatencyDispatch(shape, {topkRouting(1, 2, {0, 1}), topkRouting(1, 1, {0})},
                                  {handRows(0, 1, 4), handRows(1, 1, 4)}, &out).isOk());
  std::vector<RankRouting> map = routings;
  map[1] = toRoutingMap(routings[1], 4);
  EXPECT_FALSE(lowLatencyDispatch(shape, map, x, &out).isOk());
  std::vector<HostRows> fp32 = x;
  fp32[0] = HostRows(ElementType::kFp32, 3, 4);
  EXPECT_FALSE(lowLatencyDispatch(shape, routings, fp32, &out).isOk());
  // Combine's backward needs a BF16 communicator.
  shape.fp8 = true;
  std::vector<HostRows> grad;
  EXPECT_EQ(lowLatencyCombineBackward(shape, routings, x, nullptr, &grad).code(), ncclInvalidUsage);
}

TEST(LowLatencyErrors, RoutingFaultReportsTheFirstRankTokenSlot) {
  LowLatencyShape shape{3, 0, 6, 4, 2, 4, true, false};
  std::vector<RankRouting> routings = {topkRouting(2, 2, {0, 1, 2, 3}),
                                       topkRouting(3, 2, {0, 1, 2, 2, 6, 0}),  // t1 duplicate, t2 out of range
                                       topkRouting(1, 2, {-2, 0})};            // -2 is not a mask
  const std::vector<HostRows> x = {handRows(0, 2, 4), handRows(1, 3, 4), handRows(2, 1, 4)};
  std::vector<LowLatencyRankOutput> out;
  LowLatencyFault fault;
  Status status = lowLatencyDispatch(shape, routings, x, &out, &fault);
  EXPECT_EQ(status.code(), ncclInvalidArgument);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(fault.rank, 1);
  EXPECT_EQ(fault.record.fault, RoutingFault::kDuplicateExpert);
  EXPECT_EQ(fault.record.token, 1);
  EXPECT_EQ(fault.record.slot, 1);
  EXPECT_EQ(fault.record.value, 2);
  EXPECT_NE(status.message().find("rank 1 token 1 slot 1"), std::string::npos) << status.message();
  routings[1].topkIdx = {0, 1, 2, 3, 5, 0};
  status = lowLatencyDispatch(shape, routings, x, &out, &fault);
  EXPECT_EQ(fault.rank, 2);
  EXPECT_EQ(fault.record.fault, RoutingFault::kExpertOutOfRange);
  EXPECT_EQ(fault.record.value, -2);
  EXPECT_NE(status.message().find("rank 2 token 0 slot 0"), std::string::npos) << status.message();
  // Combine refuses a layout that is not the routing's.
  routings[2].topkIdx = {-1, 0};
  ASSERT_TRUE(lowLatencyDispatch(shape, routings, x, &out).isOk());
  std::vector<LowLatencyLayout> layouts;
  std::vector<HostRows> y;
  for (const LowLatencyRankOutput& rank : out) {
    layouts.push_back(rank.layout);
    y.push_back(HostRows(ElementType::kBf16, rank.x.rows(), 4));
  }
  std::swap(layouts[0].srcInfo[0], layouts[0].srcInfo[3]);
  std::vector<HostRows> combined;
  EXPECT_EQ(lowLatencyCombine(shape, routings, layouts, y, nullptr, &combined).code(), ncclInvalidArgument);
}

// ---- Bytes ----------------------------------------------------------------------------------------

int64_t aligned16(int64_t bytes) {
  while (bytes % 16 != 0) ++bytes;
  return bytes;
}

// Every slot the protocol can write, counted one by one, against the closed form.
TEST(LowLatencyBytes, BufferFormulaMatchesASlotBySlotCount) {
  for (int ranks : {1, 2, 8, 16}) {
    for (int perDomain : {1, 2, 8}) {
      if (perDomain > ranks || ranks % perDomain) continue;
      for (int hidden : {1, 129, 7168}) {
        for (bool fp8 : {false, true}) {
          const LowLatencyShape shape{ranks, perDomain, ranks * 4, hidden, 3, 7, fp8, false};
          ASSERT_TRUE(checkLowLatencyShape(shape).isOk());
          const int M = ranks / perDomain, N = 7, K = 3, L = 4;
          const int64_t blocks = (hidden + 127) / 128;
          const int64_t header = aligned16(4 + 8 * K);  // t + 1, K ids, K row numbers
          const int64_t dispatchRow = fp8 ? aligned16(hidden) + aligned16(4 * blocks) : aligned16(2 * hidden);
          const int64_t combineRow = aligned16(2 * hidden);
          int64_t count = 0;
          for (int parity = 0; parity < 2; ++parity) {
            for (int peer = 0; peer < ranks; ++peer) count += 64;  // signals
            count += aligned16(static_cast<int64_t>(ranks) * L * 4);  // every source's counts
            for (int s = 0; s < ranks; ++s)
              for (int t = 0; t < N; ++t) count += header + dispatchRow;  // dispatch landing slots
            for (int t = 0; t < N; ++t)
              for (int k = 0; k < K; ++k) count += combineRow;  // own-domain expert outputs
            for (int m = 0; m < M; ++m) {
              if (m == 0) continue;  // the own domain needs no network slots
              for (int t = 0; t < N; ++t) {
                count += 2 * (header + dispatchRow);    // network dispatch send + receive
                for (int k = 0; k < K; ++k) count += combineRow;  // relay rows
                count += 2 * aligned16(4 * K);          // weights send + receive
                count += 2 * combineRow;                // node partials send + receive
              }
            }
          }
          const LowLatencyBufferBytes bytes = lowLatencyBufferBytes(shape);
          EXPECT_EQ(bytes.total, count) << ranks << "/" << perDomain << " H=" << hidden << " fp8=" << fp8;
          EXPECT_EQ(bytes.total, 2 * bytes.perParity);
        }
      }
    }
  }
}

// The examples docs/low_latency.md quotes.
TEST(LowLatencyBytes, DocumentedExamples) {
  LowLatencyShape ep8{8, 8, 256, 7168, 8, 128, false, false};
  EXPECT_EQ(lowLatencyBufferBytes(ep8).total, 58887168);
  ep8.fp8 = true;
  EXPECT_EQ(lowLatencyBufferBytes(ep8).total, 44665856);
  LowLatencyShape ep16{16, 8, 256, 7168, 8, 128, false, false};
  EXPECT_EQ(lowLatencyBufferBytes(ep16).total, 132509696);
  ep16.fp8 = true;
  EXPECT_EQ(lowLatencyBufferBytes(ep16).total, 100511744);
  LowLatencyShape ep32{32, 8, 256, 7168, 8, 128, false, false};
  EXPECT_EQ(lowLatencyBufferBytes(ep32).total, 279754752);
  ep8.fp8 = false;
  const LowLatencyOutputSizes outSizes = lowLatencyOutputSizes(ep8);
  EXPECT_EQ(outSizes.rows, 32 * 1024);
  EXPECT_EQ(outSizes.xBytes, 469762048);
}

// P(a domain holds one of a token's experts), by enumerating every K-subset of a small E.
TEST(LowLatencyBytes, UniformModelMatchesEnumeration) {
  const int E = 12, K = 3, R = 6, D = 2, M = 3, L = E / R;
  double perNode = 0, perExpert = 0, perRank = 0;
  int subsets = 0;
  for (int a = 0; a < E; ++a)
    for (int b = a + 1; b < E; ++b)
      for (int c = b + 1; c < E; ++c) {
        ++subsets;
        std::set<int> domains, ranks;
        for (int e : {a, b, c}) {
          if (e / L / D == 0) continue;  // a source in domain 0
          ++perExpert;
          domains.insert(e / L / D);
          ranks.insert(e / L);
        }
        perNode += domains.size();
        perRank += ranks.size();
      }
  const LowLatencyShape shape{R, D, E, 256, K, 16, false, false};
  const LowLatencyNetworkModel model = lowLatencyUniformNetworkModel(shape, 10, K);
  EXPECT_NEAR(model.rowsPerNode, 10 * perNode / subsets, 1e-9);
  EXPECT_NEAR(model.rowsPerExpert, 10 * perExpert / subsets, 1e-9);
  EXPECT_NEAR(model.rowsPerRank, 10 * perRank / subsets, 1e-9);
  EXPECT_EQ(model.dispatchPayloadRowBytes, 512);
  EXPECT_NEAR(model.dedupFactor, perExpert / perNode, 1e-9);
  EXPECT_EQ(model.fixedWireDispatchBytes, (M - 1) * 16 * (32 + 512)) << "header: t + 1, 3 ids, 3 numbers";
  EXPECT_EQ(model.fixedWireCombineBytes, (M - 1) * 16 * (16 + 512));
}

// The figures: top-8 of 256 experts, 8 GPUs per node.
TEST(LowLatencyBytes, NodeDeduplicationFactorsAtEp16AndEp32) {
  const LowLatencyShape ep16{16, 8, 256, 7168, 8, 128, true, false};
  const LowLatencyShape ep32{32, 8, 256, 7168, 8, 128, true, false};
  const LowLatencyNetworkModel m16 = lowLatencyUniformNetworkModel(ep16, 128, 8);
  const LowLatencyNetworkModel m32 = lowLatencyUniformNetworkModel(ep32, 128, 8);
  EXPECT_NEAR(m16.dedupFactor, 4.014, 1e-3);
  EXPECT_NEAR(m32.dedupFactor, 2.213, 1e-3);
  EXPECT_NEAR(m16.rowsPerExpert, 128 * 4.0, 1e-9);
  EXPECT_NEAR(m32.rowsPerExpert, 128 * 6.0, 1e-9);
  EXPECT_EQ(m16.dispatchPayloadRowBytes, 7168 + 4 * 56);
  // Fixed slots at T = N: (M-1) x N rows, against the payload per expert: K / M.
  const double slotRows16 = 128.0, slotRows32 = 3 * 128.0;
  EXPECT_NEAR(m16.rowsPerExpert / slotRows16, 4.0, 1e-9);
  EXPECT_NEAR(m32.rowsPerExpert / slotRows32, 2.0, 1e-9);
  const LowLatencyShape ep8{8, 8, 256, 7168, 8, 128, true, false};
  EXPECT_EQ(lowLatencyUniformNetworkModel(ep8, 128, 8).dedupFactor, 0.0);
  EXPECT_EQ(lowLatencyUniformNetworkModel(ep8, 128, 8).fixedWireDispatchBytes, 0);
}

}  // namespace
}  // namespace nccl_moe::test
