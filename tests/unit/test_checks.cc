// Invalid inputs: every one is rejected before anything is computed, with its own message.
#include <gtest/gtest.h>

#include <set>

#include "../support/group_case.h"
#include "core/call_checks.h"

namespace nccl_moe::test {
namespace {

struct Rejection {
  std::string what;
  Status status;
};

// A valid 2-rank group that each case below breaks in one way.
struct ValidGroup {
  GroupShape shape{2, 8, 16, 4, 2};
  std::vector<RankRouting> routings;
  ValidGroup() {
    for (int r = 0; r < 2; ++r) {
      RankRouting routing;
      routing.numTokens = 2;
      routing.topk = 2;
      routing.topkIdx = {0, 5, 7, -1};
      routing.topkProbs = {0.5f, 0.5f, 1.0f, 0.0f};
      routings.push_back(routing);
    }
  }
  Status layout(const LayoutOptions& options = {}) const {
    GroupLayout out;
    return buildGroupLayout(shape, routings, options, &out);
  }
};

void expectDistinctRejections(const std::vector<Rejection>& rejections) {
  std::set<std::string> messages;
  for (const Rejection& r : rejections) {
    EXPECT_FALSE(r.status.isOk()) << r.what;
    EXPECT_NE(r.status.code(), ncclSuccess) << r.what;
    EXPECT_FALSE(r.status.message().empty()) << r.what;
    std::printf("  %-34s -> %s\n", r.what.c_str(), r.status.message().c_str());
    EXPECT_TRUE(messages.insert(r.status.message()).second) << "duplicate message for " << r.what;
  }
}

TEST(Checks, ValidGroupIsAccepted) {
  ValidGroup group;
  EXPECT_TRUE(group.layout().isOk()) << group.layout().message();
  EXPECT_TRUE(group.layout({OutputLayout::kExpertMajor, 4, 8}).isOk());
}

TEST(Checks, RoutingAndShapeErrorsHaveDistinctMessages) {
  std::vector<Rejection> rejections;
  auto broken = [&](const std::string& what, auto&& mutate, LayoutOptions options = {}) {
    ValidGroup group;
    mutate(group);
    rejections.push_back({what, group.layout(options)});
  };
  broken("expert id out of range", [](ValidGroup& g) { g.routings[1].topkIdx[0] = 8; });
  broken("expert id below -1", [](ValidGroup& g) { g.routings[0].topkIdx[1] = -2; });
  broken("duplicate expert in a token", [](ValidGroup& g) { g.routings[0].topkIdx[1] = 0; });
  broken("NaN probability", [](ValidGroup& g) { g.routings[0].topkProbs[0] = std::nanf(""); });
  broken("T over maxTokensPerRank", [](ValidGroup& g) {
    g.routings[0].numTokens = 5;
    g.routings[0].topkIdx.assign(10, -1);
    g.routings[0].topkProbs.assign(10, 0.0f);
  });
  broken("negative T", [](ValidGroup& g) { g.routings[1].numTokens = -1; });
  broken("topk over maxTopk", [](ValidGroup& g) {
    for (RankRouting& r : g.routings) {
      r.topk = 3;
      r.topkIdx = {0, 1, 2, 3, 4, 5};
      r.topkProbs.assign(6, 0.1f);
    }
  });
  broken("topk differs between ranks", [](ValidGroup& g) {
    g.routings[1].topk = 1;
    g.routings[1].topkIdx = {0, 1};
    g.routings[1].topkProbs = {1, 1};
  });
  broken("idx array of the wrong size", [](ValidGroup& g) { g.routings[0].topkIdx.push_back(1); });
  broken("mixed routing formats", [](ValidGroup& g) {
    g.routings[1] = toRoutingMap(g.routings[1], 8);
  });
  broken("map byte not 0/1", [](ValidGroup& g) {
    for (RankRouting& r : g.routings) r = toRoutingMap(r, 8);
    g.routings[0].routingMap[3] = 7;
  });
  broken("experts not a multiple of ranks", [](ValidGroup& g) { g.shape.experts = 7; });
  broken("hidden size zero", [](ValidGroup& g) { g.shape.hidden = 0; });
  broken("budget not a multiple of pad", [](ValidGroup&) {}, LayoutOptions{OutputLayout::kExpertMajor, 4, 6});
  broken("budget with per-rank layout", [](ValidGroup&) {}, LayoutOptions{OutputLayout::kPerRank, 0, 8});
  broken("negative padMultiple", [](ValidGroup&) {}, LayoutOptions{OutputLayout::kExpertMajor, -2, -1});
  broken("probs on one rank only", [](ValidGroup& g) { g.routings[1].withProbs = false; });
  broken("probs array of the wrong size", [](ValidGroup& g) { g.routings[1].topkProbs.pop_back(); });
  ASSERT_GE(rejections.size(), 10u);
  expectDistinctRejections(rejections);
}

// Public-API structs: the checks that run before any device work.
TEST(Checks, ApiArgumentErrorsHaveDistinctMessages) {
  CommConfig config;
  ncclMoeConfig_t user = NCCL_MOE_CONFIG_INITIALIZER;
  user.numExperts = 16;
  user.hiddenSize = 256;
  user.maxTokensPerRank = 128;
  ASSERT_TRUE(resolveConfig(&user, 4, &config).isOk());

  std::vector<Rejection> rejections;
  auto configCase = [&](const std::string& what, auto&& mutate, int ranks = 4) {
    ncclMoeConfig_t c = user;
    mutate(c);
    CommConfig out;
    rejections.push_back({what, resolveConfig(&c, ranks, &out)});
  };
  configCase("config magic missing", [](ncclMoeConfig_t& c) { c.magic = 0; });
  configCase("config from a newer header", [](ncclMoeConfig_t& c) { c.version = 2; });
  configCase("numExperts unset", [](ncclMoeConfig_t& c) { c.numExperts = NCCL_MOE_UNDEF_INT; });
  configCase("numExperts vs ranks", [](ncclMoeConfig_t&) {}, 3);
  configCase("unsupported dataType", [](ncclMoeConfig_t& c) { c.dataType = ncclFloat16; });
  configCase("fp8Dispatch not a flag", [](ncclMoeConfig_t& c) { c.fp8Dispatch = 2; });
  configCase("dispatchSms zero", [](ncclMoeConfig_t& c) { c.dispatchSms = 0; });
  configCase("timeout negative", [](ncclMoeConfig_t& c) { c.timeoutMs = -5; });
  configCase("maxTopk over experts", [](ncclMoeConfig_t& c) { c.maxTopk = 17; });

  HandleSummary summary;
  int64_t idx[4] = {0, 1, 2, 3};
  ncclMoeRouting_t routing = NCCL_MOE_ROUTING_INITIALIZER;
  routing.numTokens = 2;
  routing.topk = 2;
  routing.topkIdx = idx;
  ASSERT_TRUE(checkRoutingArgs(config, &routing, &summary).isOk());
  auto routingCase = [&](const std::string& what, auto&& mutate) {
    ncclMoeRouting_t r = routing;
    mutate(r);
    HandleSummary s;
    rejections.push_back({what, checkRoutingArgs(config, &r, &s)});
  };
  routingCase("routing topkIdx NULL", [](ncclMoeRouting_t& r) { r.topkIdx = nullptr; });
  routingCase("routing unknown format", [](ncclMoeRouting_t& r) { r.format = 9; });
  routingCase("routing map with top-k", [&](ncclMoeRouting_t& r) { r.routingMap = reinterpret_cast<uint8_t*>(idx); });
  routingCase("routing T over max", [](ncclMoeRouting_t& r) { r.numTokens = 129; });

  ncclMoeDispatchArgs_t args = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
  summary.options = {OutputLayout::kExpertMajor, 0, 64};
  args.x = idx;
  args.recvRows = 64;
  args.recvX = idx;
  ASSERT_TRUE(checkDispatchArgs(config, summary, &args).isOk());
  auto dispatchCase = [&](const std::string& what, auto&& mutate, HandleSummary s) {
    ncclMoeDispatchArgs_t a = args;
    mutate(a);
    rejections.push_back({what, checkDispatchArgs(config, s, &a)});
  };
  dispatchCase("recvRows under the budget", [](ncclMoeDispatchArgs_t& a) { a.recvRows = 10; }, summary);
  dispatchCase("scales without FP8", [&](ncclMoeDispatchArgs_t& a) { a.recvScales = reinterpret_cast<float*>(idx); }, summary);
  dispatchCase("recvTopkIdx with expert-major", [&](ncclMoeDispatchArgs_t& a) { a.recvTopkIdx = idx; }, summary);
  HandleSummary blocking = summary;
  blocking.options.rowBudget = -1;
  dispatchCase("blocking handle not counted", [](ncclMoeDispatchArgs_t&) {}, blocking);
  dispatchCase("recvRoutingMap with top-k routing", [&](ncclMoeDispatchArgs_t& a) { a.recvRoutingMap = reinterpret_cast<uint8_t*>(idx); }, summary);

  ncclMoeCombineArgs_t combine = NCCL_MOE_COMBINE_ARGS_INITIALIZER;
  combine.x = idx;
  combine.rows = 64;
  combine.out = idx;
  ASSERT_TRUE(checkCombineArgs(config, summary, &combine).isOk());
  HandleSummary withTokens = summary;
  withTokens.numTokens = 2;
  ncclMoeCombineArgs_t halfGrad = combine;
  halfGrad.probsGrad = reinterpret_cast<float*>(idx);
  rejections.push_back({"probsGrad without its output", checkCombineArgs(config, withTokens, &halfGrad)});
  // NULL is fine where the extent is zero (an empty tensor): no tokens here, nothing to write.
  HandleSummary noTokens = summary;
  noTokens.numTokens = 0;
  EXPECT_TRUE(checkCombineArgs(config, noTokens, &halfGrad).isOk());
  ncclMoeCombineArgs_t otherHalf = combine;
  otherHalf.outProbsGrad = reinterpret_cast<float*>(idx);
  rejections.push_back({"outProbsGrad without probsGrad", checkCombineArgs(config, withTokens, &otherHalf)});
  ncclMoeCombineArgs_t shortRows = combine;
  shortRows.rows = 3;
  rejections.push_back({"combine rows under the budget", checkCombineArgs(config, summary, &shortRows)});
  expectDistinctRejections(rejections);
}

// Every versioned struct of the API is checked the same way: NULL, a foreign magic, a size from
// another header, a newer version. Each is refused naming the struct and the field.
TEST(Checks, EveryStructHeaderAndNullPointerIsChecked) {
  ncclMoeConfig_t user = NCCL_MOE_CONFIG_INITIALIZER;
  user.numExperts = 16;
  user.hiddenSize = 256;
  user.maxTokensPerRank = 128;
  CommConfig config;
  ASSERT_TRUE(resolveConfig(&user, 4, &config).isOk());
  HandleSummary summary;
  summary.options = {OutputLayout::kExpertMajor, 0, 64};

  auto expectHeaderChecks = [](const char* name, auto valid, auto&& check) {
    using Struct = decltype(valid);
    ASSERT_TRUE(check(&valid).isOk()) << name;
    Status null = check(static_cast<Struct*>(nullptr));
    EXPECT_EQ(null.code(), ncclInvalidArgument) << name;
    EXPECT_NE(null.message().find("NULL"), std::string::npos) << name << ": " << null.message();
    for (int field = 0; field < 3; ++field) {
      Struct broken = valid;
      if (field == 0) broken.magic = 0x12345678;
      // Larger than any release's (ncclMoeConfig_t also takes its first release's smaller size).
      if (field == 1) broken.size = sizeof(Struct) + 8;
      if (field == 2) broken.version = NCCL_MOE_STRUCT_VERSION + 1;
      Status s = check(&broken);
      EXPECT_EQ(s.code(), ncclInvalidArgument) << name << " field " << field;
      EXPECT_NE(s.message().find(name), std::string::npos) << s.message();
      EXPECT_NE(s.message().find(field == 0 ? "magic" : field == 1 ? "size" : "version"), std::string::npos)
          << s.message();
    }
  };
  int64_t idx[2] = {0, 1};
  ncclMoeRouting_t routing = NCCL_MOE_ROUTING_INITIALIZER;
  routing.numTokens = 1;
  routing.topk = 2;
  routing.topkIdx = idx;
  expectHeaderChecks("ncclMoeRouting_t", routing, [&](const ncclMoeRouting_t* r) {
    HandleSummary out;
    return checkRoutingArgs(config, r, &out);
  });
  expectHeaderChecks("ncclMoeLayoutOptions_t", ncclMoeLayoutOptions_t NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER,
                     [&](const ncclMoeLayoutOptions_t* o) {
                       LayoutOptions out;
                       return checkLayoutArgs(config, o, &out);
                     });
  ncclMoeDispatchArgs_t dispatch = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
  dispatch.recvRows = 64;
  dispatch.recvX = idx;
  expectHeaderChecks("ncclMoeDispatchArgs_t", dispatch,
                     [&](const ncclMoeDispatchArgs_t* a) { return checkDispatchArgs(config, summary, a); });
  ncclMoeCombineArgs_t combine = NCCL_MOE_COMBINE_ARGS_INITIALIZER;
  combine.x = idx;
  combine.rows = 64;
  expectHeaderChecks("ncclMoeCombineArgs_t", combine,
                     [&](const ncclMoeCombineArgs_t* a) { return checkCombineArgs(config, summary, a); });
  expectHeaderChecks("ncclMoeConfig_t", user, [&](const ncclMoeConfig_t* c) {
    CommConfig out;
    return resolveConfig(c, 4, &out);
  });
}

// Shapes the implementation cannot represent are refused with the limit in the message, before
// any product of them is formed (row ids are 32-bit, byte sizes 64-bit).
TEST(Checks, UnrepresentableShapesAreRefusedWithTheLimit) {
  ncclMoeConfig_t user = NCCL_MOE_CONFIG_INITIALIZER;
  user.numExperts = 256;
  user.hiddenSize = 7168;
  user.maxTokensPerRank = 4096;
  CommConfig config;
  ASSERT_TRUE(resolveConfig(&user, 8, &config).isOk());

  std::vector<Rejection> rejections;
  auto configCase = [&](const std::string& what, auto&& mutate, const std::string& limit) {
    ncclMoeConfig_t c = user;
    mutate(c);
    CommConfig out;
    Status s = resolveConfig(&c, 8, &out);
    EXPECT_NE(s.message().find(limit), std::string::npos) << what << ": " << s.message();
    rejections.push_back({what, s});
  };
  configCase("hiddenSize past the limit", [](ncclMoeConfig_t& c) { c.hiddenSize = INT_MAX; },
             std::to_string(ShapeLimits::kMaxHiddenSize));
  configCase("maxTokensPerRank past the limit", [](ncclMoeConfig_t& c) { c.maxTokensPerRank = INT_MAX; },
             std::to_string(ShapeLimits::kMaxTokensPerRank));
  // Each value within its own limit, but the rows a rank may receive overflow 32-bit row ids:
  // 8 ranks x 2^24 tokens x 32 local experts = 2^32.
  configCase("received rows past 32 bits",
             [](ncclMoeConfig_t& c) {
               c.maxTokensPerRank = ShapeLimits::kMaxTokensPerRank;
               c.maxTopk = 64;
             },
             std::to_string(ShapeLimits::kMaxRowsPerRank));

  auto layoutCase = [&](const std::string& what, LayoutOptions options, const std::string& limit) {
    ncclMoeLayoutOptions_t o = NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER;
    o.layout = options.layout == OutputLayout::kExpertMajor ? NCCL_MOE_LAYOUT_EXPERT_MAJOR : NCCL_MOE_LAYOUT_PER_RANK;
    o.padMultiple = options.padMultiple;
    o.rowBudget = options.rowBudget;
    LayoutOptions resolved;
    Status s = checkLayoutArgs(config, &o, &resolved);
    EXPECT_NE(s.message().find(limit), std::string::npos) << what << ": " << s.message();
    rejections.push_back({what, s});
  };
  layoutCase("padMultiple past the limit", {OutputLayout::kExpertMajor, INT_MAX, -1},
             std::to_string(ShapeLimits::kMaxPadMultiple));
  layoutCase("rowBudget past 32 bits", {OutputLayout::kExpertMajor, 0, int64_t{1} << 40},
             std::to_string(ShapeLimits::kMaxRowsPerRank));
  expectDistinctRejections(rejections);

  // The largest accepted shape's worst case stays representable, and is what a budget-less
  // expert-major layout reserves: padding counted once per local expert.
  GroupShape shape{8, 256, 7168, 4096, 8};
  EXPECT_EQ(maxRowsPerRank(shape, {OutputLayout::kExpertMajor, 16, -1}), 8LL * 4096 * 8 + 32 * 15);
  EXPECT_EQ(maxRowsPerRank(shape, {OutputLayout::kPerRank, 0, -1}), 8LL * 4096);
  EXPECT_EQ(maxRowsPerRank(shape, {OutputLayout::kExpertMajor, 16, 4096}), 4096);
}

}  // namespace
}  // namespace nccl_moe::test
