// The CPU oracle: dispatch copies, routing delivery, combine sums, both gradients, FP8.
#include <gtest/gtest.h>

#include <cmath>

#include "../support/group_case.h"
#include "reference/fp8.h"

namespace nccl_moe::test {
namespace {

struct Scenario {
  const char* name;
  GroupShape shape;
  std::vector<int> tokens;
  RoutingRecipe recipe;
};

std::vector<Scenario> scenarios() {
  std::vector<Scenario> list;
  RoutingRecipe uniform;
  uniform.topk = 4;
  list.push_back({"uniform", {8, 32, 24, 64, 8}, {64, 64, 64, 64, 64, 64, 64, 64}, uniform});
  RoutingRecipe skewed = uniform;
  skewed.skew = 2.5;
  skewed.maskedFraction = 0.25;
  list.push_back({"skewed-masked-uneven", {4, 16, 33, 50, 8}, {50, 0, 17, 1}, skewed});
  RoutingRecipe single;
  single.topk = 1;
  list.push_back({"top1-odd-hidden", {2, 2, 129, 20, 2}, {20, 5}, single});
  RoutingRecipe wide;
  wide.topk = 8;
  wide.skew = 6.0;  // nearly every token hits experts 0..7 (rank 0 and 1)
  list.push_back({"hot-experts", {4, 32, 16, 30, 8}, {30, 30, 0, 30}, wide});
  return list;
}

HostRows scaleRows(const HostRows& rows, const std::vector<float>& perRow, int width) {
  HostRows out(rows.type(), rows.rows(), rows.cols());
  for (int64_t r = 0; r < rows.rows(); ++r) {
    float p = 0.0f;
    for (int k = 0; k < width; ++k) p += perRow[r * width + k];
    for (int c = 0; c < rows.cols(); ++c) out.set(r, c, rows.get(r, c) * p);
  }
  return out;
}

class ReferenceTest : public ::testing::TestWithParam<std::tuple<int, RoutingFormat, OutputLayout>> {
 protected:
  void SetUp() override {
    rng_.seed(testSeed());
    scenario_ = scenarios()[std::get<0>(GetParam())];
    format_ = std::get<1>(GetParam());
    options_.layout = std::get<2>(GetParam());
    if (options_.layout == OutputLayout::kExpertMajor) options_.padMultiple = 4;
  }
  GroupCase makeCase(ElementType type) {
    return makeGroupCase(scenario_.shape, scenario_.tokens, scenario_.recipe, format_, type, rng_);
  }
  int probWidth() const {
    if (options_.layout == OutputLayout::kExpertMajor) return 1;
    return format_ == RoutingFormat::kTopk ? scenario_.recipe.topk : scenario_.shape.localExperts();
  }

  std::mt19937_64 rng_;
  Scenario scenario_;
  RoutingFormat format_ = RoutingFormat::kTopk;
  LayoutOptions options_;
};

TEST_P(ReferenceTest, DispatchCopiesRowsBitExactAndDeliversRouting) {
  GroupCase group = makeCase(ElementType::kBf16);
  GroupLayout layout = mustLayout(group, options_);
  std::vector<RankDispatchOutput> out;
  ASSERT_TRUE(referenceDispatch(layout, group.routings, group.x, {}, &out).isOk());
  const int L = group.shape.localExperts();
  for (int d = 0; d < group.shape.ranks; ++d) {
    const RankDispatchOutput& rank = out[d];
    ASSERT_EQ(rank.x.rows(), layout.recvRows(d));
    for (int64_t r = 0; r < rank.x.rows(); ++r) {
      const RecvRow& row = layout.recv[d].rows[r];
      if (row.isPadding()) {
        for (int c = 0; c < group.shape.hidden; ++c) ASSERT_EQ(rank.x.get(r, c), 0.0f);
        EXPECT_EQ(rank.probs[r], 0.0f);
        continue;
      }
      ASSERT_EQ(0, std::memcmp(rank.x.row(r), group.x[row.srcRank].row(row.srcToken), rank.x.rowBytes()));
      // Routing delivered: compare against the source routing, found independently.
      const RankRouting& src = group.routings[row.srcRank];
      const int E = group.shape.experts;
      if (options_.layout == OutputLayout::kExpertMajor) {
        const int e = d * L + row.localExpert;
        float want = format_ == RoutingFormat::kMap ? src.denseProbs[row.srcToken * E + e] : 0.0f;
        if (format_ == RoutingFormat::kTopk)
          for (int k = 0; k < src.topk; ++k)
            if (src.topkIdx[row.srcToken * src.topk + k] == e) want = src.topkProbs[row.srcToken * src.topk + k];
        EXPECT_EQ(rank.probs[r], want);
      } else if (format_ == RoutingFormat::kTopk) {
        for (int k = 0; k < src.topk; ++k) {
          const int64_t e = src.topkIdx[row.srcToken * src.topk + k];
          const bool local = e >= 0 && e / L == d;
          EXPECT_EQ(rank.topkIdx[r * src.topk + k], local ? e - d * L : -1);
          EXPECT_EQ(rank.probs[r * src.topk + k], local ? src.topkProbs[row.srcToken * src.topk + k] : 0.0f);
        }
      } else {
        for (int l = 0; l < L; ++l) {
          EXPECT_EQ(rank.routingMap[r * L + l], src.routingMap[row.srcToken * E + d * L + l]);
          EXPECT_EQ(rank.probs[r * L + l], src.denseProbs[row.srcToken * E + d * L + l]);
        }
      }
    }
  }
}

TEST_P(ReferenceTest, IdentityRoundTripCountsDestinations) {
  GroupCase group = makeCase(ElementType::kBf16);
  GroupLayout layout = mustLayout(group, options_);
  std::vector<HostRows> rows, combined;
  std::vector<std::vector<float>> scales;
  ASSERT_TRUE(referenceDispatchRows(layout, group.x, {}, &rows, &scales).isOk());
  ASSERT_TRUE(referenceCombine(layout, rows, {}, &combined).isOk());
  for (int s = 0; s < group.shape.ranks; ++s) {
    for (int t = 0; t < group.routings[s].numTokens; ++t) {
      // Copies per destination rank: 1 per owning rank (per-rank layout) or 1 per selected expert
      // (expert-major), counted straight from the routing.
      std::vector<int> copies(group.shape.ranks, 0);
      forEachSelection(group.routings[s], group.shape.experts, t, [&](const Selection& sel) {
        int& n = copies[group.shape.ownerOf(sel.expert)];
        n = options_.layout == OutputLayout::kPerRank ? 1 : n + 1;
      });
      for (int c = 0; c < group.shape.hidden; ++c) {
        // n * x is exact in fp32 for n <= 8 and bf16 x; each rank's partial is rounded to bf16,
        // then the sum of the partials once more.
        float sum = 0.0f;
        for (int n : copies) sum += bf16ToFloat(floatToBf16(n * group.x[s].get(t, c)));
        const float want = bf16ToFloat(floatToBf16(sum));
        ASSERT_EQ(combined[s].get(t, c), want) << "rank " << s << " token " << t;
      }
    }
  }
}

TEST_P(ReferenceTest, ProbsWeightedRoundTripAndGradients) {
  GroupCase group = makeCase(ElementType::kFp32);
  GroupLayout layout = mustLayout(group, options_);
  std::vector<RankDispatchOutput> dispatched;
  ASSERT_TRUE(referenceDispatch(layout, group.routings, group.x, {}, &dispatched).isOk());
  const int R = group.shape.ranks, H = group.shape.hidden, E = group.shape.experts;
  const int width = probWidth();
  // Forward: experts apply their probs; combine must give x * sum(probs of the token).
  std::vector<HostRows> expertOut;
  for (int d = 0; d < R; ++d) expertOut.push_back(scaleRows(dispatched[d].x, dispatched[d].probs, width));
  std::vector<HostRows> y;
  ASSERT_TRUE(referenceCombine(layout, expertOut, {}, &y).isOk());
  std::vector<std::vector<float>> probSum(R);
  for (int s = 0; s < R; ++s)
    for (int t = 0; t < group.routings[s].numTokens; ++t) {
      double sum = 0;
      forEachSelection(group.routings[s], E, t, [&](const Selection& sel) { sum += sel.prob; });
      for (int c = 0; c < H; ++c)
        ASSERT_NEAR(y[s].get(t, c), group.x[s].get(t, c) * sum, 1e-5 * (1 + std::fabs(group.x[s].get(t, c))));
    }

  // Backward of loss = sum_t <w_t, y_t>: combine's backward is a cached dispatch of w; the
  // experts' backward gives grad_x_row = p * w_row and grad_p_row = <w_row, x_row>; dispatch's
  // backward combines them. Analytic: dL/dx_t = w_t * sum(p), dL/dp_{t,e} = <w_t, x_t>.
  std::vector<HostRows> w;
  for (int s = 0; s < R; ++s) w.push_back(randomRows(ElementType::kFp32, group.routings[s].numTokens, H, 1.0f, rng_));
  std::vector<HostRows> wRows;
  std::vector<std::vector<float>> unusedScales;
  ASSERT_TRUE(referenceDispatchRows(layout, w, {}, &wRows, &unusedScales).isOk());
  std::vector<HostRows> gradRecvX;
  std::vector<std::vector<float>> gradRecvProbs(R);
  for (int d = 0; d < R; ++d) {
    gradRecvX.push_back(scaleRows(wRows[d], dispatched[d].probs, width));
    gradRecvProbs[d].assign(dispatched[d].probs.size(), 0.0f);
    for (int64_t r = 0; r < layout.recvRows(d); ++r) {
      double dot = 0;
      for (int c = 0; c < H; ++c) dot += static_cast<double>(wRows[d].get(r, c)) * dispatched[d].x.get(r, c);
      // Local slots get the dot product; the others a poison that the reduction must ignore.
      for (int k = 0; k < width; ++k) {
        bool local = true;
        if (options_.layout == OutputLayout::kPerRank)
          local = format_ == RoutingFormat::kTopk ? dispatched[d].topkIdx[r * width + k] >= 0
                                                  : dispatched[d].routingMap[r * width + k] != 0;
        gradRecvProbs[d][r * width + k] = local ? static_cast<float>(dot) : 12345.0f;
      }
    }
  }
  std::vector<HostRows> gradX;
  std::vector<std::vector<float>> gradProbs;
  ASSERT_TRUE(referenceCombine(layout, gradRecvX, {}, &gradX).isOk());
  ASSERT_TRUE(referenceProbsGrad(layout, group.routings, gradRecvProbs, &gradProbs).isOk());
  for (int s = 0; s < R; ++s) {
    const RankRouting& routing = group.routings[s];
    const int slots = routing.slots(E);
    for (int t = 0; t < routing.numTokens; ++t) {
      double sum = 0, dot = 0;
      forEachSelection(routing, E, t, [&](const Selection& sel) { sum += sel.prob; });
      for (int c = 0; c < H; ++c) {
        dot += static_cast<double>(w[s].get(t, c)) * group.x[s].get(t, c);
        ASSERT_NEAR(gradX[s].get(t, c), w[s].get(t, c) * sum, 1e-5);
      }
      std::vector<float> want(slots, 0.0f);
      forEachSelection(routing, E, t, [&](const Selection& sel) { want[sel.slot] = static_cast<float>(dot); });
      for (int k = 0; k < slots; ++k)
        ASSERT_NEAR(gradProbs[s][t * slots + k], want[k], 1e-4 * (1 + std::fabs(want[k])))
            << "rank " << s << " token " << t << " slot " << k;
    }
  }
}

TEST_P(ReferenceTest, Fp8DispatchQuantisesEachRowOnce) {
  GroupCase group = makeCase(ElementType::kBf16);
  GroupLayout layout = mustLayout(group, options_);
  for (bool pow2 : {false, true}) {
    std::vector<HostRows> rows;
    std::vector<std::vector<float>> scales;
    ASSERT_TRUE(referenceDispatchRows(layout, group.x, {true, pow2}, &rows, &scales).isOk());
    const int H = group.shape.hidden, blocks = fp8BlockCount(H);
    std::vector<float> source(H);
    std::vector<uint8_t> q(H);
    std::vector<float> s(blocks);
    for (int d = 0; d < group.shape.ranks; ++d) {
      ASSERT_EQ(rows[d].type(), ElementType::kE4m3);
      for (int64_t r = 0; r < layout.recvRows(d); ++r) {
        const RecvRow& row = layout.recv[d].rows[r];
        if (row.isPadding()) {
          for (int b = 0; b < blocks; ++b) ASSERT_EQ(scales[d][r * blocks + b], 0.0f);
          continue;
        }
        for (int c = 0; c < H; ++c) source[c] = group.x[row.srcRank].get(row.srcToken, c);
        quantizeRowE4m3(source.data(), H, pow2, q.data(), s.data());
        ASSERT_EQ(0, std::memcmp(q.data(), rows[d].row(r), H));
        for (int b = 0; b < blocks; ++b) {
          ASSERT_EQ(scales[d][r * blocks + b], s[b]);
          if (pow2) {
            ASSERT_EQ(floatBits(s[b]) & 0x7FFFFF, 0u);
          }
        }
      }
    }
  }
}

TEST_P(ReferenceTest, CombineIsDeterministicAndFollowsDomainOrder) {
  GroupCase group = makeCase(ElementType::kBf16);
  GroupLayout layout = mustLayout(group, options_);
  std::vector<HostRows> rows;
  for (int d = 0; d < group.shape.ranks; ++d)
    rows.push_back(randomRows(ElementType::kBf16, layout.recvRows(d), group.shape.hidden, 100.0f, rng_));
  std::vector<HostRows> flat, again, nested;
  ASSERT_TRUE(referenceCombine(layout, rows, {}, &flat).isOk());
  ASSERT_TRUE(referenceCombine(layout, rows, {}, &again).isOk());
  ASSERT_TRUE(referenceCombine(layout, rows, {2}, &nested).isOk());
  for (int s = 0; s < group.shape.ranks; ++s) {
    EXPECT_EQ(flat[s].bytes(), again[s].bytes());
    for (int t = 0; t < group.routings[s].numTokens; ++t)
      for (int c = 0; c < group.shape.hidden; ++c) {
        // Brute force over every (rank, row) of the group: rank partials, then domains of one
        // (flat) or two (nested) ranks, each partial rounded to bf16.
        auto bf16 = [](float v) { return bf16ToFloat(floatToBf16(v)); };
        std::vector<float> perRank(group.shape.ranks, 0.0f);
        for (int d = 0; d < group.shape.ranks; ++d)
          for (int64_t r = 0; r < layout.recvRows(d); ++r) {
            const RecvRow& row = layout.recv[d].rows[r];
            if (row.srcRank == s && row.srcToken == t) perRank[d] += rows[d].get(r, c);
          }
        float flatSum = 0.0f, nestedSum = 0.0f;
        for (int d = 0; d < group.shape.ranks; ++d) flatSum += bf16(perRank[d]);
        for (int d = 0; d < group.shape.ranks; d += 2)
          nestedSum += bf16(bf16(perRank[d]) + (d + 1 < group.shape.ranks ? bf16(perRank[d + 1]) : 0.0f));
        ASSERT_EQ(flat[s].get(t, c), bf16(bf16(flatSum)));
        ASSERT_EQ(nested[s].get(t, c), bf16(nestedSum));
      }
  }
}

std::string caseName(const ::testing::TestParamInfo<ReferenceTest::ParamType>& info) {
  std::string name = scenarios()[std::get<0>(info.param)].name;
  name += std::get<1>(info.param) == RoutingFormat::kTopk ? "_topk" : "_map";
  name += std::get<2>(info.param) == OutputLayout::kPerRank ? "_perrank" : "_expertmajor";
  for (char& ch : name)
    if (ch == '-') ch = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Groups, ReferenceTest,
                         ::testing::Combine(::testing::Range(0, 4),
                                            ::testing::Values(RoutingFormat::kTopk, RoutingFormat::kMap),
                                            ::testing::Values(OutputLayout::kPerRank, OutputLayout::kExpertMajor)),
                         caseName);

// The probs gradient of loss(p) = sum_t <w_t, combine(dispatch(x) * p)_t> against finite
// differences of the loss itself (the pipeline is linear in p, so a large step is exact up to
// float32 rounding).
TEST(ReferenceGradients, ProbsGradientMatchesFiniteDifferences) {
  std::mt19937_64 rng(testSeed());
  for (OutputLayout layoutKind : {OutputLayout::kPerRank, OutputLayout::kExpertMajor}) {
    RoutingRecipe recipe;
    recipe.topk = 3;
    recipe.maskedFraction = 0.2;
    GroupCase group = makeGroupCase({3, 6, 10, 8, 3}, {8, 5, 0}, recipe, RoutingFormat::kTopk, ElementType::kFp32, rng);
    const LayoutOptions options{layoutKind, layoutKind == OutputLayout::kExpertMajor ? 2 : 0, -1};
    GroupLayout layout = mustLayout(group, options);
    const int width = layoutKind == OutputLayout::kPerRank ? 3 : 1;
    std::vector<HostRows> w;
    for (int s = 0; s < 3; ++s) w.push_back(randomRows(ElementType::kFp32, group.routings[s].numTokens, 10, 1.0f, rng));
    auto loss = [&](const std::vector<RankRouting>& routings) {
      std::vector<RankDispatchOutput> out;
      EXPECT_TRUE(referenceDispatch(layout, routings, group.x, {}, &out).isOk());
      std::vector<HostRows> expert, y;
      for (int d = 0; d < 3; ++d) expert.push_back(scaleRows(out[d].x, out[d].probs, width));
      EXPECT_TRUE(referenceCombine(layout, expert, {}, &y).isOk());
      double total = 0;
      for (int s = 0; s < 3; ++s)
        for (int t = 0; t < routings[s].numTokens; ++t)
          for (int c = 0; c < 10; ++c) total += static_cast<double>(w[s].get(t, c)) * y[s].get(t, c);
      return total;
    };
    // Analytic path through the library: grad of each received prob slot = <w_row, x_row>.
    std::vector<RankDispatchOutput> out;
    ASSERT_TRUE(referenceDispatch(layout, group.routings, group.x, {}, &out).isOk());
    std::vector<HostRows> wRows;
    std::vector<std::vector<float>> unused, gradRecv(3), grad;
    ASSERT_TRUE(referenceDispatchRows(layout, w, {}, &wRows, &unused).isOk());
    for (int d = 0; d < 3; ++d) {
      gradRecv[d].assign(out[d].probs.size(), 0.0f);
      for (int64_t r = 0; r < layout.recvRows(d); ++r) {
        double dot = 0;
        for (int c = 0; c < 10; ++c) dot += static_cast<double>(wRows[d].get(r, c)) * out[d].x.get(r, c);
        for (int k = 0; k < width; ++k) gradRecv[d][r * width + k] = static_cast<float>(dot);
      }
    }
    ASSERT_TRUE(referenceProbsGrad(layout, group.routings, gradRecv, &grad).isOk());
    const double base = loss(group.routings);
    for (int s = 0; s < 3; ++s)
      for (int i = 0; i < group.routings[s].numTokens * 3; ++i) {
        if (group.routings[s].topkIdx[i] < 0) {
          EXPECT_EQ(grad[s][i], 0.0f) << "masked slot";
          continue;
        }
        std::vector<RankRouting> bumped = group.routings;
        bumped[s].topkProbs[i] += 0.5f;
        const double fd = (loss(bumped) - base) / 0.5;
        EXPECT_NEAR(grad[s][i], fd, 1e-4 * (1 + std::fabs(fd))) << "rank " << s << " slot " << i;
      }
  }
}

TEST(ReferenceBudget, DroppedRowsLeaveCombineAndGradientsOut) {
  std::mt19937_64 rng(testSeed());
  RoutingRecipe recipe;
  recipe.topk = 2;
  GroupCase group = makeGroupCase({2, 4, 8, 40, 2}, {40, 40}, recipe, RoutingFormat::kTopk, ElementType::kFp32, rng);
  GroupLayout layout = mustLayout(group, {OutputLayout::kExpertMajor, 2, 16});
  std::vector<HostRows> rows, combined;
  std::vector<std::vector<float>> scales;
  ASSERT_TRUE(referenceDispatchRows(layout, group.x, {}, &rows, &scales).isOk());
  ASSERT_TRUE(referenceCombine(layout, rows, {}, &combined).isOk());
  bool anyDropped = false;
  for (int d = 0; d < 2; ++d) {
    EXPECT_TRUE(layout.recv[d].overflow);
    EXPECT_EQ(layout.recvRows(d), 16);
  }
  for (int s = 0; s < 2; ++s)
    for (int t = 0; t < 40; ++t) {
      // Count the kept rows of this token by scanning the layouts.
      int kept = 0;
      for (int d = 0; d < 2; ++d)
        for (const RecvRow& row : layout.recv[d].rows) kept += row.srcRank == s && row.srcToken == t;
      anyDropped |= kept < 2;
      for (int c = 0; c < 8; ++c) ASSERT_EQ(combined[s].get(t, c), kept * group.x[s].get(t, c));
    }
  EXPECT_TRUE(anyDropped);
}

TEST(ReferenceErrors, InputsThatDoNotMatchTheLayoutAreRejected) {
  std::mt19937_64 rng(testSeed());
  RoutingRecipe recipe;
  recipe.topk = 2;
  GroupCase group = makeGroupCase({2, 4, 8, 10, 2}, {10, 3}, recipe, RoutingFormat::kTopk, ElementType::kBf16, rng);
  GroupLayout layout = mustLayout(group, {});
  std::vector<RankDispatchOutput> out;
  std::vector<HostRows> x = group.x;
  x[1] = HostRows(ElementType::kBf16, 4, 8);
  EXPECT_EQ(referenceDispatch(layout, group.routings, x, {}, &out).code(), ncclInvalidArgument);
  x = group.x;
  x[0] = HostRows(ElementType::kFp32, 10, 8);
  EXPECT_EQ(referenceDispatch(layout, group.routings, x, {}, &out).code(), ncclInvalidArgument);
  std::vector<HostRows> rows = {HostRows(ElementType::kBf16, layout.recvRows(0), 8),
                                HostRows(ElementType::kBf16, 0, 8)};
  std::vector<HostRows> combined;
  if (layout.recvRows(1) > 0) {
    EXPECT_EQ(referenceCombine(layout, rows, {}, &combined).code(), ncclInvalidArgument);
  }
  std::vector<std::vector<float>> grads;
  EXPECT_EQ(referenceProbsGrad(layout, group.routings, {{}, {}}, &grads).code(), ncclInvalidArgument);
}

}  // namespace
}  // namespace nccl_moe::test
