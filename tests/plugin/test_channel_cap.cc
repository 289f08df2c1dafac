// The SM-budget policy: which cap a communicator gets, and the per-collective answer.
#include <gtest/gtest.h>

#include "plugin/channel_cap.h"

namespace nccl_moe {
namespace {

TunerSettings settingsWith(int maxChannels, bool overlap, int dispatchSms = 24, int combineSms = 24) {
  TunerSettings settings;
  settings.ncclMaxChannels = maxChannels;
  settings.overlapNccl = overlap;
  settings.dispatchSms = dispatchSms;
  settings.combineSms = combineSms;
  return settings;
}

TEST(ChannelCap, NothingConfiguredLeavesNcclAlone) {
  const ChannelCap cap = decideChannelCap(settingsWith(0, false), 132);
  EXPECT_EQ(cap.channels, 0);
  EXPECT_NE(cap.reason.find("no cap"), std::string::npos);
}

TEST(ChannelCap, ExplicitCapWinsOverTheSmBudget) {
  const ChannelCap cap = decideChannelCap(settingsWith(8, true), 132);
  EXPECT_EQ(cap.channels, 8);
  EXPECT_EQ(cap.reason, "NCCL_MOE_NCCL_MAX_CHANNELS=8");
}

TEST(ChannelCap, OverlapGivesNcclTheSmsTheLargerMoeBudgetLeaves) {
  // H100: 132 SMs. Dispatch 100 / combine 80 -> 32 left for NCCL.
  EXPECT_EQ(decideChannelCap(settingsWith(0, true, 100, 80), 132).channels, 32);
  EXPECT_EQ(decideChannelCap(settingsWith(0, true, 20, 110), 132).channels, 22);
  // 132 - 24 = 108 is more than NCCL's 64 channels.
  EXPECT_EQ(decideChannelCap(settingsWith(0, true), 132).channels, 64);
  // A MoE budget of the whole GPU still leaves NCCL one channel.
  EXPECT_EQ(decideChannelCap(settingsWith(0, true, 1024, 24), 132).channels, 1);
}

TEST(ChannelCap, OverlapWithoutAKnownGpuLeavesNcclAlone) {
  const ChannelCap cap = decideChannelCap(settingsWith(0, true), 0);
  EXPECT_EQ(cap.channels, 0);
  EXPECT_NE(cap.reason.find("unknown"), std::string::npos);
}

TEST(ChannelCap, NoCapPassesAChainedAnswerThrough) {
  EXPECT_EQ(channelsForCollective(0, size_t{1} << 30, 0), 0);
  EXPECT_EQ(channelsForCollective(0, size_t{1} << 30, 5), 5);
}

TEST(ChannelCap, CapShrinksForSmallCollectives) {
  EXPECT_EQ(channelsForCollective(8, 0, 0), 1);
  EXPECT_EQ(channelsForCollective(8, 4096, 0), 1);
  EXPECT_EQ(channelsForCollective(8, kBytesPerChannel, 0), 1);
  EXPECT_EQ(channelsForCollective(8, kBytesPerChannel + 1, 0), 2);
  EXPECT_EQ(channelsForCollective(8, 100 << 10, 0), 4);
  EXPECT_EQ(channelsForCollective(8, size_t{1} << 30, 0), 8);
}

TEST(ChannelCap, ChainedAnswerIsKeptBelowTheCap) {
  EXPECT_EQ(channelsForCollective(8, size_t{1} << 30, 3), 3);
  EXPECT_EQ(channelsForCollective(8, 16, 20), 8);
}

}  // namespace
}  // namespace nccl_moe
