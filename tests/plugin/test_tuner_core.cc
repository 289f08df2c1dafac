// The tuner behind the ABI entries: registry entries per communicator, the summary through NCCL's
// logger, caps, and calls without a context.
#include <gtest/gtest.h>

#include "cost_table_fixture.h"
#include "log_capture.h"
#include "misc/comm_registry.h"
#include "plugin/tuner.h"
#include "scoped_env.h"

namespace nccl_moe {
namespace {

using testing_support::CostTable;
using testing_support::LogCapture;
using testing_support::ScopedEnv;

InitCall initCall(uint64_t commId, size_t ranks, size_t nodes, tuner_abi::NvlDomainInfo* domains) {
  InitCall call;
  call.abiVersion = 5;
  call.hasCommId = true;
  call.commId = commId;
  call.ranks = ranks;
  call.nodes = nodes;
  call.logger = &LogCapture::logger;
  call.nvlDomains = domains;
  return call;
}

TEST(TunerCore, EveryCommunicatorIsRegisteredUntilFinalized) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  const size_t before = commRegistry().size();
  tuner_abi::NvlDomainInfo domains{2, 8, 8};
  void* first = nullptr;
  void* second = nullptr;
  ASSERT_EQ(tunerInit(initCall(0xaaa, 16, 2, &domains), &first), ncclSuccess);
  ASSERT_EQ(tunerInit(initCall(0xbbb, 16, 2, &domains), &second), ncclSuccess);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(commRegistry().size(), before + 2);
  const auto record = commRegistry().findByNcclId(0xbbb);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->ranks, 16u);
  EXPECT_EQ(record->nvlDomains, 2);
  EXPECT_EQ(tunerFinalize(first), ncclSuccess);
  EXPECT_FALSE(commRegistry().findByNcclId(0xaaa).has_value());
  EXPECT_EQ(tunerFinalize(second), ncclSuccess);
  EXPECT_EQ(commRegistry().size(), before);
}

TEST(TunerCore, SummaryGoesToNcclsLoggerAtInfo) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  env.set("NCCL_MOE_NCCL_MAX_CHANNELS", "4");
  LogCapture::instance().clear();
  tuner_abi::NvlDomainInfo domains{4, 8, 8};
  void* context = nullptr;
  ASSERT_EQ(tunerInit(initCall(0xc0ffee, 32, 4, &domains), &context), ncclSuccess);
  const auto lines = LogCapture::instance().lines();
  ASSERT_EQ(lines.size(), 1u) << LogCapture::instance().joined();
  EXPECT_EQ(lines[0].level, tuner_abi::kLogInfo);
  EXPECT_EQ(lines[0].flags, tuner_abi::kSubsysInit | tuner_abi::kSubsysTuning);
  EXPECT_NE(lines[0].text.find("comm 0000000000c0ffee: 32 ranks, 4 nodes, 4 NVLink domains of 8 ranks"),
            std::string::npos) << lines[0].text;
  EXPECT_NE(lines[0].text.find("capped at 4 channels"), std::string::npos) << lines[0].text;
  EXPECT_EQ(tunerFinalize(context), ncclSuccess);
}

TEST(TunerCore, CapAppliesToEveryCollectiveAndLeavesTheTableAlone) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  env.set("NCCL_MOE_NCCL_MAX_CHANNELS", "6");
  void* context = nullptr;
  ASSERT_EQ(tunerInit(initCall(1, 8, 1, nullptr), &context), ncclSuccess);
  for (int coll : {tuner_abi::kBroadcast, tuner_abi::kReduce, tuner_abi::kAllGather,
                   tuner_abi::kReduceScatter, tuner_abi::kAllReduce}) {
    CostTable table;
    const CostTable original;
    CollCall call;
    call.collType = coll;
    call.nBytes = size_t{256} << 20;
    call.costTable = table.table();
    call.numAlgo = CostTable::kAlgos;
    call.numProto = CostTable::kProtos;
    int channels = 0;
    EXPECT_EQ(tunerGetCollInfo(context, call, &channels), ncclSuccess);
    EXPECT_EQ(channels, 6) << "collective " << coll;
    EXPECT_EQ(table.costs, original.costs);
  }
  EXPECT_EQ(tunerFinalize(context), ncclSuccess);
}

TEST(TunerCore, CallsWithoutAContextDoNothing) {
  int channels = 0;
  EXPECT_EQ(tunerGetCollInfo(nullptr, CollCall{}, &channels), ncclSuccess);
  EXPECT_EQ(channels, 0);
  size_t chunk = 4096;
  EXPECT_EQ(tunerGetChunkSize(nullptr, 0, 1, 1, 2, 1, &chunk), ncclSuccess);
  EXPECT_EQ(chunk, 4096u);
  EXPECT_EQ(tunerFinalize(nullptr), ncclSuccess);
  EXPECT_EQ(tunerInit(InitCall{}, nullptr), ncclSuccess);
}

TEST(TunerCore, NoLoggerIsFine) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  InitCall call;
  call.abiVersion = 2;
  call.ranks = 2;
  call.nodes = 2;
  void* context = nullptr;
  ASSERT_EQ(tunerInit(call, &context), ncclSuccess);
  EXPECT_NE(context, nullptr);
  EXPECT_EQ(tunerFinalize(context), ncclSuccess);
}

}  // namespace
}  // namespace nccl_moe
