// Chaining to other tuner plugins of every ABI generation, through the version-independent calls.
#include <gtest/gtest.h>

#include "cost_table_fixture.h"
#include "fake_tuner_counters.h"
#include "plugin/chained_tuner.h"
#include "plugin_test_paths.h"
#include "scoped_env.h"

namespace nccl_moe {
namespace {

using testing_support::CostTable;
using testing_support::ScopedEnv;

InitCall v5Init(tuner_abi::NvlDomainInfo* domains, tuner_abi::TunerConstants* constants) {
  InitCall call;
  call.abiVersion = 5;
  call.hasCommId = true;
  call.commId = 0x1234;
  call.ranks = 16;
  call.nodes = 2;
  call.nvlDomains = domains;
  call.constants = constants;
  return call;
}

CollCall tableQuery(CostTable& table, size_t nBytes) {
  CollCall call;
  call.collType = tuner_abi::kAllReduce;
  call.nBytes = nBytes;
  call.numPipeOps = 1;
  call.costTable = table.table();
  call.numAlgo = CostTable::kAlgos;
  call.numProto = CostTable::kProtos;
  return call;
}

TEST(ChainedTuner, MissingLibraryIsAnError) {
  std::string error;
  EXPECT_EQ(ChainedTuner::open("/nonexistent/libnccl-tuner-x.so", &error), nullptr);
  EXPECT_NE(error.find("/nonexistent/libnccl-tuner-x.so"), std::string::npos) << error;
  error.clear();
  EXPECT_EQ(ChainedTuner::open("no-such-tuner", &error), nullptr);
  EXPECT_NE(error.find("libnccl-tuner-no-such-tuner.so"), std::string::npos) << error;
}

TEST(ChainedTuner, LibraryWithoutTunerSymbolIsAnError) {
  std::string error;
  EXPECT_EQ(ChainedTuner::open("libm.so.6", &error), nullptr);
  EXPECT_NE(error.find("no ncclTunerPlugin"), std::string::npos) << error;
}

TEST(ChainedTuner, V5TunerGetsEveryCallAndEditsTheTable) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  std::string error;
  auto tuner = ChainedTuner::open(kFakeTunerV5Path, &error);
  ASSERT_NE(tuner, nullptr) << error;
  EXPECT_EQ(tuner->version(), 5);
  EXPECT_NE(tuner->description().find("fake-v5 (v5, "), std::string::npos) << tuner->description();

  tuner_abi::NvlDomainInfo domains{2, 8, 8};
  tuner_abi::TunerConstants constants{};
  void* context = nullptr;
  ASSERT_EQ(tuner->init(v5Init(&domains, &constants), &context), ncclSuccess);
  EXPECT_EQ(testing_support::fakeTunerLastCommId(kFakeTunerV5Path), 0x1234u);

  CostTable table;
  int channels = 0;
  ASSERT_EQ(tuner->getCollInfo(context, tableQuery(table, 1 << 20), &channels), ncclSuccess);
  EXPECT_EQ(channels, 3);
  EXPECT_EQ(table.at(CostTable::kRing, CostTable::kSimple), 0.0f);
  EXPECT_EQ(table.at(CostTable::kTree, CostTable::kSimple), 40.0f);
  EXPECT_EQ(tuner->finalize(context), ncclSuccess);
}

TEST(ChainedTuner, V5TunerBehindAnOlderCallerGetsDomainsAndConstants) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  std::string error;
  auto tuner = ChainedTuner::open(kFakeTunerV5Path, &error);
  ASSERT_NE(tuner, nullptr) << error;
  InitCall call;  // v3: no id, no domains, no constants (the fake rejects null pointers)
  call.abiVersion = 3;
  call.ranks = 8;
  call.nodes = 1;
  void* context = nullptr;
  EXPECT_EQ(tuner->init(call, &context), ncclSuccess);

  // A v2 caller has no cost table: the tuner's cheapest entry becomes the algorithm/protocol.
  CollCall query;
  query.nBytes = 1 << 20;
  int algorithm = -1, protocol = -1, channels = 0;
  query.algorithm = &algorithm;
  query.protocol = &protocol;
  ASSERT_EQ(tuner->getCollInfo(context, query, &channels), ncclSuccess);
  EXPECT_EQ(algorithm, CostTable::kRing);
  EXPECT_EQ(protocol, CostTable::kSimple);
  EXPECT_EQ(channels, 3);
  EXPECT_EQ(tuner->finalize(context), ncclSuccess);
}

TEST(ChainedTuner, V2TunerChoiceBecomesTheCheapestTableEntry) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  env.set("FAKE_TUNER_CHANNELS", "5");
  std::string error;
  auto tuner = ChainedTuner::open(kFakeTunerV2Path, &error);
  ASSERT_NE(tuner, nullptr) << error;
  EXPECT_EQ(tuner->version(), 2);
  tuner_abi::NvlDomainInfo domains{1, 8, 8};
  tuner_abi::TunerConstants constants{};
  void* context = nullptr;
  ASSERT_EQ(tuner->init(v5Init(&domains, &constants), &context), ncclSuccess);
  CostTable table;
  int channels = 0;
  ASSERT_EQ(tuner->getCollInfo(context, tableQuery(table, 1 << 20), &channels), ncclSuccess);
  EXPECT_EQ(channels, 5);
  EXPECT_EQ(table.at(CostTable::kRing, CostTable::kSimple), 0.0f);
  EXPECT_EQ(table.at(CostTable::kRing, CostTable::kLL), 10.0f);
  EXPECT_EQ(tuner->finalize(context), ncclSuccess);
}

TEST(ChainedTuner, V2ChoiceOfAnIgnoredEntryIsNotForced) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  std::string error;
  auto tuner = ChainedTuner::open(kFakeTunerV2Path, &error);
  ASSERT_NE(tuner, nullptr) << error;
  void* context = nullptr;
  ASSERT_EQ(tuner->init(InitCall{}, &context), ncclSuccess);
  CostTable table;
  table.at(CostTable::kRing, CostTable::kSimple) = tuner_abi::kIgnoredCost;  // e.g. NCCL_PROTO
  int channels = 0;
  ASSERT_EQ(tuner->getCollInfo(context, tableQuery(table, 1 << 20), &channels), ncclSuccess);
  EXPECT_EQ(table.at(CostTable::kRing, CostTable::kSimple), tuner_abi::kIgnoredCost);
}

TEST(ChainedTuner, V6ChunkSizeIsForwarded) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  std::string error;
  auto tuner = ChainedTuner::open(kFakeTunerV6Path, &error);
  ASSERT_NE(tuner, nullptr) << error;
  EXPECT_EQ(tuner->version(), 6);
  size_t chunk = 131072;
  EXPECT_EQ(tuner->getChunkSize(nullptr, tuner_abi::kAllReduce, 1 << 20, 1, 2, 4, &chunk), ncclSuccess);
  EXPECT_EQ(chunk, 262144u);
}

TEST(ChainedTuner, OlderTunersLeaveTheChunkSizeAlone) {
  std::string error;
  auto tuner = ChainedTuner::open(kFakeTunerV5Path, &error);
  ASSERT_NE(tuner, nullptr) << error;
  size_t chunk = 131072;
  EXPECT_EQ(tuner->getChunkSize(nullptr, tuner_abi::kAllReduce, 1 << 20, 1, 2, 4, &chunk), ncclSuccess);
  EXPECT_EQ(chunk, 131072u);
}

TEST(ChainedTuner, SharedInstancePerName) {
  std::string error;
  auto first = sharedChainedTuner(kFakeTunerV6Path, &error);
  auto second = sharedChainedTuner(kFakeTunerV6Path, &error);
  ASSERT_NE(first, nullptr) << error;
  EXPECT_EQ(first.get(), second.get());
}

}  // namespace
}  // namespace nccl_moe
