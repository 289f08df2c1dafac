// Environment of the tuner: defaults, valid values, and bad values that warn and fall back.
#include <gtest/gtest.h>

#include "plugin/tuner_settings.h"
#include "scoped_env.h"

namespace nccl_moe {
namespace {

using testing_support::ScopedEnv;

TEST(TunerSettings, DefaultsWhenNothingIsSet) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  const TunerSettings settings = readTunerSettings();
  EXPECT_EQ(settings.ncclMaxChannels, 0);
  EXPECT_FALSE(settings.overlapNccl);
  EXPECT_EQ(settings.dispatchSms, 24);
  EXPECT_EQ(settings.combineSms, 24);
  EXPECT_TRUE(settings.chainTuner.empty());
  EXPECT_TRUE(settings.rejected.empty());
}

TEST(TunerSettings, ReadsEveryVariable) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  env.set("NCCL_MOE_NCCL_MAX_CHANNELS", "16")
      .set("NCCL_MOE_OVERLAP_NCCL", "1")
      .set("NCCL_MOE_DISPATCH_SMS", "20")
      .set("NCCL_MOE_COMBINE_SMS", "0x10")
      .set("NCCL_MOE_CHAIN_TUNER", "other");
  const TunerSettings settings = readTunerSettings();
  EXPECT_EQ(settings.ncclMaxChannels, 16);
  EXPECT_TRUE(settings.overlapNccl);
  EXPECT_EQ(settings.dispatchSms, 20);
  EXPECT_EQ(settings.combineSms, 16);
  EXPECT_EQ(settings.chainTuner, "other");
  EXPECT_TRUE(settings.rejected.empty());
}

TEST(TunerSettings, BadValuesAreRejectedAndDefaulted) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  env.set("NCCL_MOE_NCCL_MAX_CHANNELS", "eight")
      .set("NCCL_MOE_OVERLAP_NCCL", "2")
      .set("NCCL_MOE_DISPATCH_SMS", "-4")
      .set("NCCL_MOE_COMBINE_SMS", "12abc");
  const TunerSettings settings = readTunerSettings();
  EXPECT_EQ(settings.ncclMaxChannels, 0);
  EXPECT_FALSE(settings.overlapNccl);
  EXPECT_EQ(settings.dispatchSms, 24);
  EXPECT_EQ(settings.combineSms, 24);
  ASSERT_EQ(settings.rejected.size(), 4u);
  EXPECT_EQ(settings.rejected[0], "NCCL_MOE_NCCL_MAX_CHANNELS=\"eight\"");
  EXPECT_EQ(settings.rejected[1], "NCCL_MOE_OVERLAP_NCCL=\"2\"");
}

TEST(TunerSettings, CapAboveNcclsChannelLimitIsRejected) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  env.set("NCCL_MOE_NCCL_MAX_CHANNELS", "65");
  const TunerSettings settings = readTunerSettings();
  EXPECT_EQ(settings.ncclMaxChannels, 0);
  EXPECT_EQ(settings.rejected.size(), 1u);
}

TEST(TunerSettings, EmptyValueMeansUnset) {
  ScopedEnv env;
  testing_support::clearTunerEnvironment(env);
  env.set("NCCL_MOE_NCCL_MAX_CHANNELS", "");
  const TunerSettings settings = readTunerSettings();
  EXPECT_EQ(settings.ncclMaxChannels, 0);
  EXPECT_TRUE(settings.rejected.empty());
}

}  // namespace
}  // namespace nccl_moe
