// A whole EP group's inputs for CPU tests: routings and token rows of every rank, from a seed
// that the test prints so any failure can be replayed.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "reference/layout.h"
#include "reference/random_routing.h"
#include "reference/reference.h"

namespace nccl_moe::test {

// Seed for a test: NCCL_MOE_TEST_SEED when set, else a fresh one; always printed.
inline uint64_t testSeed() {
  static const uint64_t base = [] {
    const char* text = std::getenv("NCCL_MOE_TEST_SEED");
    return text ? std::strtoull(text, nullptr, 0) : std::random_device{}();
  }();
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const uint64_t seed = base ^ std::hash<std::string>{}(std::string(info->test_suite_name()) + "." + info->name());
  std::printf("[ seed     ] %s.%s: NCCL_MOE_TEST_SEED=%llu (per-test seed %llu)\n",
              info->test_suite_name(), info->name(), (unsigned long long)base, (unsigned long long)seed);
  return seed;
}

struct GroupCase {
  GroupShape shape;
  std::vector<RankRouting> routings;
  std::vector<HostRows> x;
};

// Every rank gets `tokens[r]` tokens routed by `recipe` (its numTokens/experts are overridden).
inline GroupCase makeGroupCase(const GroupShape& shape, const std::vector<int>& tokens,
                               RoutingRecipe recipe, RoutingFormat format, ElementType rowType,
                               std::mt19937_64& rng) {
  GroupCase group;
  group.shape = shape;
  for (int r = 0; r < shape.ranks; ++r) {
    recipe.numTokens = tokens[r];
    recipe.experts = shape.experts;
    RankRouting routing = randomTopkRouting(recipe, rng);
    group.routings.push_back(format == RoutingFormat::kTopk ? routing : toRoutingMap(routing, shape.experts));
    group.x.push_back(randomRows(rowType, tokens[r], shape.hidden, 2.0f, rng));
  }
  return group;
}

inline GroupLayout mustLayout(const GroupCase& group, const LayoutOptions& options) {
  GroupLayout layout;
  const Status status = buildGroupLayout(group.shape, group.routings, options, &layout);
  EXPECT_TRUE(status.isOk()) << status.message();
  return layout;
}

// The distinct ranks owning token t's selected experts, found straight from the routing.
inline std::vector<int> ownerRanks(const GroupShape& shape, const RankRouting& routing, int t) {
  std::vector<int> owners;
  forEachSelection(routing, shape.experts, t, [&](const Selection& sel) {
    const int owner = sel.expert / (shape.experts / shape.ranks);
    if (std::find(owners.begin(), owners.end(), owner) == owners.end()) owners.push_back(owner);
  });
  return owners;
}

}  // namespace nccl_moe::test
