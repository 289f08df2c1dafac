// libnccl_moe.so as NCCL sees it: dlopen()ed by path (the build's library and its
// libnccl-tuner-moe.so name), entry structs found by dlsym, every call made through them with the
// arguments NCCL 2.28 passes. Nothing here links nccl-moe.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "cost_table_fixture.h"
#include "fake_tuner_counters.h"
#include "log_capture.h"
#include "plugin_test_paths.h"
#include "scoped_env.h"
#include "plugin/tuner_abi.h"

namespace nccl_moe {
namespace {

using namespace tuner_abi;
using testing_support::CostTable;
using testing_support::LogCapture;
using testing_support::ScopedEnv;

// Per process: ctest -j runs the cases of this suite as concurrent processes.
std::string debugFilePath() {
  return ::testing::TempDir() + "nccl_moe_plugin_abi_debug." + std::to_string(getpid()) + ".log";
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class PluginAbi : public ::testing::Test {
 protected:
  // nccl-moe's own log (NCCL_MOE_DEBUG) is configured once, when the library first logs: set it
  // before the library is loaded.
  static void SetUpTestSuite() {
    std::remove(debugFilePath().c_str());
    setenv("NCCL_MOE_DEBUG", "WARN", 1);
    setenv("NCCL_MOE_DEBUG_FILE", debugFilePath().c_str(), 1);
    library_ = dlopen(kLibraryPath, RTLD_NOW | RTLD_LOCAL);
  }

  void SetUp() override {
    ASSERT_NE(library_, nullptr) << dlerror();
    testing_support::clearTunerEnvironment(env_);
    LogCapture::instance().clear();
  }

  template <class T>
  static const T* entry(const char* symbol) {
    return static_cast<const T*>(dlsym(library_, symbol));
  }
  static const TunerV5& v5() { return *entry<TunerV5>(kSymbolV5); }

  // What NCCL 2.28 does at communicator init.
  void* initV5(uint64_t commId = 0x5eed, size_t ranks = 16, size_t nodes = 2) {
    void* context = nullptr;
    domains_ = NvlDomainInfo{static_cast<int>(nodes), static_cast<int>(ranks / nodes),
                             static_cast<int>(ranks / nodes)};
    EXPECT_EQ(v5().init(&context, commId, ranks, nodes, &LogCapture::logger, &domains_, &constants_),
              ncclSuccess);
    return context;
  }

  // What NCCL 2.28 does for one collective: nChannels starts at 0, the table is NCCL's.
  int channelsFor(void* context, size_t nBytes, CostTable* table = nullptr, int coll = kAllReduce) {
    CostTable local;
    CostTable& costs = table != nullptr ? *table : local;
    int channels = 0;
    EXPECT_EQ(v5().getCollInfo(context, coll, nBytes, 1, costs.table(), CostTable::kAlgos,
                               CostTable::kProtos, 0, &channels),
              ncclSuccess);
    return channels;
  }

  static void* library_;
  ScopedEnv env_;
  NvlDomainInfo domains_{};
  TunerConstants constants_{};
};

void* PluginAbi::library_ = nullptr;

TEST_F(PluginAbi, ExportsEveryTunerVersionNcclLooksFor) {
  const auto* v2 = entry<TunerV2>(kSymbolV2);
  const auto* v3 = entry<TunerV3>(kSymbolV3);
  const auto* v4 = entry<TunerV4>(kSymbolV4);
  const auto* v5 = entry<TunerV5>(kSymbolV5);
  const auto* v6 = entry<TunerV6>(kSymbolV6);
  const auto* v7 = entry<TunerV7>(kSymbolV7);
  ASSERT_TRUE(v2 && v3 && v4 && v5 && v6 && v7);
  for (const char* name : {v2->name, v3->name, v4->name, v5->name, v6->name, v7->name}) {
    EXPECT_STREQ(name, "nccl-moe");
  }
  EXPECT_TRUE(v2->init && v2->getCollInfo && v2->destroy);
  EXPECT_TRUE(v3->init && v3->getCollInfo && v3->destroy);
  EXPECT_TRUE(v4->init && v4->getCollInfo && v4->destroy);
  EXPECT_TRUE(v5->init && v5->getCollInfo && v5->finalize);
  EXPECT_TRUE(v6->init && v6->getCollInfo && v6->finalize && v6->getChunkSize);
  EXPECT_TRUE(v7->init && v7->getCollInfo && v7->finalize && v7->getChunkSize);
  // The MoE API is exported from the same library; internals are not.
  EXPECT_NE(dlsym(library_, "ncclMoeGetVersion"), nullptr);
  EXPECT_EQ(dlsym(library_, "ncclTunerPlugin_v8"), nullptr);
  EXPECT_EQ(dlsym(library_, "_ZN8nccl_moe12commRegistryEv"), nullptr);
}

TEST_F(PluginAbi, PluginNameIsTheSameLibrary) {
  // NCCL_TUNER_PLUGIN=moe opens libnccl-tuner-moe.so: the one copy of the library (and of its
  // process-wide state) that a framework linking libnccl_moe.so already has.
  void* byPluginName = dlopen(kPluginLinkPath, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(byPluginName, nullptr) << dlerror();
  EXPECT_EQ(byPluginName, library_);
  EXPECT_EQ(dlsym(byPluginName, kSymbolV5), dlsym(library_, kSymbolV5));
  dlclose(byPluginName);
}

TEST_F(PluginAbi, WithoutConfigurationNcclChoicesAreLeftAlone) {
  void* context = initV5();
  ASSERT_NE(context, nullptr);
  for (size_t bytes : {size_t{8}, size_t{64} << 10, size_t{1} << 30}) {
    CostTable table;
    const CostTable original;
    EXPECT_EQ(channelsFor(context, bytes, &table), 0) << bytes;
    EXPECT_EQ(table.costs, original.costs);
  }
  EXPECT_EQ(LogCapture::instance().count("nccl-moe tuner (v5) comm 0000000000005eed: 16 ranks, 2 nodes, "
                                         "2 NVLink domains of 8 ranks", kLogInfo),
            1) << LogCapture::instance().joined();
  EXPECT_EQ(LogCapture::instance().count("NCCL channels left to NCCL"), 1);
  EXPECT_EQ(v5().finalize(context), ncclSuccess);
}

TEST_F(PluginAbi, ChannelCapFromTheEnvironment) {
  env_.set("NCCL_MOE_NCCL_MAX_CHANNELS", "8");
  void* context = initV5();
  ASSERT_NE(context, nullptr);
  EXPECT_EQ(channelsFor(context, 4 << 10), 1);
  EXPECT_EQ(channelsFor(context, 100 << 10), 4);
  EXPECT_EQ(channelsFor(context, 1 << 20), 8);
  EXPECT_EQ(channelsFor(context, size_t{4} << 30), 8);
  EXPECT_EQ(channelsFor(context, 1 << 20, nullptr, kReduceScatter), 8);
  EXPECT_EQ(LogCapture::instance().count("capped at 8 channels (NCCL_MOE_NCCL_MAX_CHANNELS=8)"), 1)
      << LogCapture::instance().joined();
  EXPECT_EQ(v5().finalize(context), ncclSuccess);
}

TEST_F(PluginAbi, CollNetChoiceKeepsNcclsChannelCount) {
  // NCCL uses a tuner's count for CollNet without clamping it to the communicator's channels.
  env_.set("NCCL_MOE_NCCL_MAX_CHANNELS", "8");
  void* context = initV5();
  ASSERT_NE(context, nullptr);
  CostTable table;
  table.at(2, 2) = 1.0f;  // CollNetDirect/Simple: the cheapest entry
  EXPECT_EQ(channelsFor(context, size_t{1} << 30, &table), 0);
  EXPECT_EQ(v5().finalize(context), ncclSuccess);
}

TEST_F(PluginAbi, EveryVersionCaps) {
  env_.set("NCCL_MOE_NCCL_MAX_CHANNELS", "4");
  const size_t bytes = size_t{1} << 30;
  CostTable table;
  int channels = 0;
  void* context = nullptr;

  const auto* v2 = entry<TunerV2>(kSymbolV2);
  ASSERT_EQ(v2->init(8, 1, &LogCapture::logger, &context), ncclSuccess);
  int algorithm = -1, protocol = -1;
  EXPECT_EQ(v2->getCollInfo(context, kAllReduce, bytes, 0, 0, 1, &algorithm, &protocol, &channels), ncclSuccess);
  EXPECT_EQ(channels, 4);
  EXPECT_EQ(algorithm, -1);  // NCCL still chooses the algorithm and protocol
  EXPECT_EQ(protocol, -1);
  EXPECT_EQ(v2->destroy(context), ncclSuccess);

  const auto* v3 = entry<TunerV3>(kSymbolV3);
  channels = 0;
  ASSERT_EQ(v3->init(8, 1, &LogCapture::logger, &context), ncclSuccess);
  EXPECT_EQ(v3->getCollInfo(context, kAllGather, bytes, 1, table.table(), CostTable::kAlgos, CostTable::kProtos, &channels), ncclSuccess);
  EXPECT_EQ(channels, 4);
  EXPECT_EQ(v3->destroy(context), ncclSuccess);

  const auto* v4 = entry<TunerV4>(kSymbolV4);
  channels = 0;
  ASSERT_EQ(v4->init(8, 1, &LogCapture::logger, &context), ncclSuccess);
  EXPECT_EQ(v4->getCollInfo(context, kAllReduce, bytes, 1, table.table(), CostTable::kAlgos, CostTable::kProtos, 1, &channels), ncclSuccess);
  EXPECT_EQ(channels, 4);
  EXPECT_EQ(v4->destroy(context), ncclSuccess);

  const auto* v6 = entry<TunerV6>(kSymbolV6);
  channels = 0;
  ASSERT_EQ(v6->init(&context, 66, 8, 1, &LogCapture::logger, &domains_, &constants_), ncclSuccess);
  EXPECT_EQ(v6->getCollInfo(context, kAllReduce, bytes, 1, table.table(), CostTable::kAlgos, CostTable::kProtos, 0, &channels), ncclSuccess);
  EXPECT_EQ(channels, 4);
  size_t chunk = 1 << 17;
  EXPECT_EQ(v6->getChunkSize(context, kAllReduce, bytes, 1, 2, 4, &chunk), ncclSuccess);
  EXPECT_EQ(chunk, size_t{1} << 17);  // no chained tuner: NCCL's chunk size stands
  EXPECT_EQ(v6->finalize(context), ncclSuccess);

  const auto* v7 = entry<TunerV7>(kSymbolV7);
  channels = 0;
  TunerConstantsV7 constants7{};
  constants7.llMaxBws[4][2] = 77.0;  // the fifth compute-capability row, which only v7 has
  ASSERT_EQ(v7->init(&context, 77, 8, 1, &LogCapture::logger, &domains_, &constants7), ncclSuccess);
  EXPECT_EQ(v7->getCollInfo(context, kAllReduce, bytes, 1, table.table(), CostTable::kAlgos, CostTable::kProtos, 0, &channels), ncclSuccess);
  EXPECT_EQ(channels, 4);
  chunk = 1 << 17;
  EXPECT_EQ(v7->getChunkSize(context, kAllReduce, bytes, 1, 2, 4, &chunk), ncclSuccess);
  EXPECT_EQ(chunk, size_t{1} << 17);
  EXPECT_EQ(v7->finalize(context), ncclSuccess);
  EXPECT_EQ(constants7.llMaxBws[4][2], 77.0);

  for (const char* version : {"(v2)", "(v3)", "(v4)", "(v6)", "(v7)"}) {
    EXPECT_EQ(LogCapture::instance().count(std::string("nccl-moe tuner ") + version), 1) << version;
  }
}

TEST_F(PluginAbi, BadValuesWarnAndUseDefaults) {
  env_.set("NCCL_MOE_NCCL_MAX_CHANNELS", "lots").set("NCCL_MOE_OVERLAP_NCCL", "yes")
      .set("NCCL_MOE_DISPATCH_SMS", "-1");
  void* context = initV5();
  ASSERT_NE(context, nullptr);
  EXPECT_EQ(channelsFor(context, size_t{1} << 30), 0);  // defaults: no cap
  // Through NCCL's logger, as a warning: the setting was ignored ...
  EXPECT_EQ(LogCapture::instance().count("NCCL_MOE_NCCL_MAX_CHANNELS=\"lots\" is not valid; using the default", kLogWarn), 1)
      << LogCapture::instance().joined();
  EXPECT_EQ(LogCapture::instance().count("NCCL_MOE_OVERLAP_NCCL=\"yes\" is not valid"), 1);
  EXPECT_EQ(LogCapture::instance().count("NCCL_MOE_DISPATCH_SMS=\"-1\" is not valid"), 1);
  // ... and as a warning in nccl-moe's own log (printed even without NCCL_MOE_DEBUG).
  const std::string ownLog = readFile(debugFilePath());
  EXPECT_NE(ownLog.find("WARN NCCL_MOE_NCCL_MAX_CHANNELS=\"lots\" is not an integer in [0, 64]; ignored, using 0"),
            std::string::npos) << ownLog;
  EXPECT_EQ(v5().finalize(context), ncclSuccess);
}

TEST_F(PluginAbi, SmBudgetDerivedCapNeedsAGpu) {
  env_.set("NCCL_MOE_OVERLAP_NCCL", "1").set("NCCL_MOE_DISPATCH_SMS", "100").set("NCCL_MOE_COMBINE_SMS", "20");
  void* context = initV5();
  ASSERT_NE(context, nullptr);
  const int channels = channelsFor(context, size_t{1} << 30);
  if (LogCapture::instance().count("SM count is unknown") == 1) {
    EXPECT_EQ(channels, 0);  // CI: no GPU, nothing to derive from
  } else {
    EXPECT_EQ(LogCapture::instance().count("MoE SMs (NCCL_MOE_OVERLAP_NCCL=1)"), 1) << LogCapture::instance().joined();
    EXPECT_GE(channels, 1);
  }
  EXPECT_EQ(v5().finalize(context), ncclSuccess);
}

TEST_F(PluginAbi, ChainsToAnotherTuner) {
  env_.set("NCCL_MOE_NCCL_MAX_CHANNELS", "8").set("NCCL_MOE_CHAIN_TUNER", kFakeTunerV5Path);
  void* context = initV5(0xfeed);
  ASSERT_NE(context, nullptr);
  EXPECT_EQ(LogCapture::instance().count("chained tuner: fake-v5 (v5, "), 1) << LogCapture::instance().joined();
  EXPECT_EQ(testing_support::fakeTunerLastCommId(kFakeTunerV5Path), 0xfeedu);
  const int collBefore = testing_support::fakeTunerCounter(kFakeTunerV5Path, "fakeTunerCollCalls");
  CostTable table;
  EXPECT_EQ(channelsFor(context, size_t{1} << 30, &table), 3);  // its answer, below the cap
  EXPECT_EQ(table.at(CostTable::kRing, CostTable::kSimple), 0.0f);  // its table edit
  env_.set("FAKE_TUNER_CHANNELS", "32");
  EXPECT_EQ(channelsFor(context, size_t{1} << 30), 8);  // capped
  EXPECT_EQ(testing_support::fakeTunerCounter(kFakeTunerV5Path, "fakeTunerCollCalls"), collBefore + 2);
  const int finalizeBefore = testing_support::fakeTunerCounter(kFakeTunerV5Path, "fakeTunerFinalizeCalls");
  EXPECT_EQ(v5().finalize(context), ncclSuccess);
  EXPECT_EQ(testing_support::fakeTunerCounter(kFakeTunerV5Path, "fakeTunerFinalizeCalls"), finalizeBefore + 1);
}

TEST_F(PluginAbi, ChainedChunkSizeThroughV6) {
  env_.set("NCCL_MOE_CHAIN_TUNER", kFakeTunerV6Path);
  const auto* v6 = entry<TunerV6>(kSymbolV6);
  void* context = nullptr;
  ASSERT_EQ(v6->init(&context, 6, 8, 1, &LogCapture::logger, &domains_, &constants_), ncclSuccess);
  size_t chunk = 1 << 17;
  EXPECT_EQ(v6->getChunkSize(context, kAllReduce, 1 << 20, 1, 2, 4, &chunk), ncclSuccess);
  EXPECT_EQ(chunk, size_t{1} << 18);
  EXPECT_EQ(v6->finalize(context), ncclSuccess);
}

// NCCL calls v7, the chained tuner is v6: it gets v5's table (the shared rows), its chunk size
// reaches NCCL, and the fifth compute-capability row NCCL passed is left alone.
TEST_F(PluginAbi, ChainedV6TunerUnderAV7Caller) {
  env_.set("NCCL_MOE_CHAIN_TUNER", kFakeTunerV6Path);
  const auto* v7 = entry<TunerV7>(kSymbolV7);
  void* context = nullptr;
  TunerConstantsV7 constants7{};
  constants7.perChMaxTreeBws[4][0] = 41.0;
  constants7.perChMaxTreeBws[0][0] = 3.0;
  ASSERT_EQ(v7->init(&context, 7, 8, 1, &LogCapture::logger, &domains_, &constants7), ncclSuccess);
  size_t chunk = 1 << 17;
  EXPECT_EQ(v7->getChunkSize(context, kAllReduce, 1 << 20, 1, 2, 4, &chunk), ncclSuccess);
  EXPECT_EQ(chunk, size_t{1} << 18);
  EXPECT_EQ(v7->finalize(context), ncclSuccess);
  EXPECT_EQ(constants7.perChMaxTreeBws[4][0], 41.0);
  EXPECT_EQ(constants7.perChMaxTreeBws[0][0], 3.0);
}

// Chained v7 tuner: under a v7 caller it gets NCCL's own table (its change to the fifth row and
// to a shared value both reach NCCL); under a v6 caller a table made from v5's, whose shared
// values come back.
TEST_F(PluginAbi, ChainedV7TunerUnderV7AndV6Callers) {
  env_.set("NCCL_MOE_CHAIN_TUNER", kFakeTunerV7Path);
  const auto* v7 = entry<TunerV7>(kSymbolV7);
  void* context = nullptr;
  TunerConstantsV7 constants7{};
  constants7.llMaxBws[4][0] = 5.0;
  constants7.llMaxBws[0][0] = 2.0;
  ASSERT_EQ(v7->init(&context, 7, 8, 1, &LogCapture::logger, &domains_, &constants7), ncclSuccess);
  EXPECT_EQ(constants7.llMaxBws[4][0], 105.0);
  EXPECT_EQ(constants7.llMaxBws[0][0], 3.0);
  size_t chunk = 1 << 10;
  EXPECT_EQ(v7->getChunkSize(context, kAllReduce, 1 << 20, 1, 2, 4, &chunk), ncclSuccess);
  EXPECT_EQ(chunk, size_t{3} << 10);
  EXPECT_EQ(v7->finalize(context), ncclSuccess);

  const auto* v6 = entry<TunerV6>(kSymbolV6);
  TunerConstants constants5{};
  constants5.llMaxBws[0][0] = 2.0;
  ASSERT_EQ(v6->init(&context, 6, 8, 1, &LogCapture::logger, &domains_, &constants5), ncclSuccess);
  EXPECT_EQ(constants5.llMaxBws[0][0], 3.0);
  EXPECT_EQ(v6->finalize(context), ncclSuccess);
}

TEST_F(PluginAbi, FailingChainedTunerNeverReachesNccl) {
  env_.set("NCCL_MOE_NCCL_MAX_CHANNELS", "8").set("NCCL_MOE_CHAIN_TUNER", kFakeTunerV5Path);
  void* context = initV5();
  ASSERT_NE(context, nullptr);
  env_.set("FAKE_TUNER_FAIL", "coll");
  for (int call = 0; call < 3; ++call) {
    CostTable table;
    const CostTable original;
    EXPECT_EQ(channelsFor(context, size_t{1} << 30, &table), 8);  // the cap alone
    EXPECT_EQ(table.costs, original.costs);                       // its partial edit undone
  }
  EXPECT_EQ(LogCapture::instance().count("failed (error 3); its answers are ignored", kLogWarn), 1)
      << LogCapture::instance().joined();
  env_.set("FAKE_TUNER_FAIL", "finalize");
  EXPECT_EQ(v5().finalize(context), ncclSuccess);
  EXPECT_EQ(LogCapture::instance().count("failed to finalize", kLogWarn), 1);
}

TEST_F(PluginAbi, ChainThatCannotBeUsedIsSkipped) {
  env_.set("NCCL_MOE_NCCL_MAX_CHANNELS", "2");
  struct Case {
    std::string chain;
    const char* fail;
    const char* expected;
  };
  const Case cases[] = {
      {"/nonexistent/libnccl-tuner-gone.so", "", "not used"},
      {kLibraryPath, "", "is nccl-moe itself"},
      {kFakeTunerV5Path, "init", "failed to initialise (error 3)"},
  };
  for (const Case& c : cases) {
    LogCapture::instance().clear();
    env_.set("NCCL_MOE_CHAIN_TUNER", c.chain).set("FAKE_TUNER_FAIL", c.fail);
    void* context = initV5();
    ASSERT_NE(context, nullptr) << c.chain;
    EXPECT_EQ(LogCapture::instance().count(c.expected, kLogWarn), 1) << LogCapture::instance().joined();
    EXPECT_EQ(LogCapture::instance().count("chained tuner: none"), 1) << LogCapture::instance().joined();
    EXPECT_EQ(channelsFor(context, size_t{1} << 30), 2);
    EXPECT_EQ(v5().finalize(context), ncclSuccess);
  }
}

TEST_F(PluginAbi, NullContextIsHarmless) {
  int channels = 0;
  CostTable table;
  EXPECT_EQ(v5().getCollInfo(nullptr, kAllReduce, 1 << 20, 1, table.table(), CostTable::kAlgos,
                             CostTable::kProtos, 0, &channels),
            ncclSuccess);
  EXPECT_EQ(channels, 0);
  EXPECT_EQ(v5().finalize(nullptr), ncclSuccess);
}

}  // namespace
}  // namespace nccl_moe
