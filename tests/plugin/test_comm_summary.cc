// The init summary line: shape, MoE plan, cap, chain.
#include <gtest/gtest.h>

#include "plugin/comm_summary.h"

namespace nccl_moe {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(CommSummary, OneDomainIsNvlinkOnly) {
  CommRecord record;
  record.hasNcclId = true;
  record.ncclCommId = 0xabcdef;
  record.ranks = 8;
  record.nodes = 1;
  record.nvlDomains = 1;
  record.minRanksPerDomain = record.maxRanksPerDomain = 8;
  const std::string text = describeComm(record, ChannelCap{}, "", 5);
  EXPECT_TRUE(contains(text, "nccl-moe tuner (v5) comm 0000000000abcdef: 8 ranks, 1 nodes, 1 NVLink domain of 8 ranks"))
      << text;
  EXPECT_TRUE(contains(text, "NVLink only")) << text;
  EXPECT_TRUE(contains(text, "NCCL channels left to NCCL")) << text;
  EXPECT_TRUE(contains(text, "chained tuner: none")) << text;
}

TEST(CommSummary, SeveralDomainsPlanHybridEp) {
  CommRecord record;
  record.hasNcclId = true;
  record.ranks = 32;
  record.nodes = 4;
  record.nvlDomains = 4;
  record.minRanksPerDomain = record.maxRanksPerDomain = 8;
  ChannelCap cap;
  cap.channels = 8;
  cap.reason = "NCCL_MOE_NCCL_MAX_CHANNELS=8";
  const std::string text = describeComm(record, cap, "fake (v5, x.so)", 6);
  EXPECT_TRUE(contains(text, "32 ranks, 4 nodes, 4 NVLink domains of 8 ranks")) << text;
  EXPECT_TRUE(contains(text, "HybridEP")) << text;
  EXPECT_TRUE(contains(text, "75.0% of uniformly routed rows leave their domain")) << text;
  EXPECT_TRUE(contains(text, "capped at 8 channels (NCCL_MOE_NCCL_MAX_CHANNELS=8)")) << text;
  EXPECT_TRUE(contains(text, "chained tuner: fake (v5, x.so)")) << text;
}

TEST(CommSummary, OlderAbiUsesNodesAsDomainsAndTheRegistryKey) {
  CommRecord record;
  record.key = 7;
  record.ranks = 16;
  record.nodes = 2;
  const std::string text = describeComm(record, ChannelCap{}, "", 3);
  EXPECT_TRUE(contains(text, "(v3) comm #7: 16 ranks, 2 nodes, 2 NVLink domains of 8 ranks")) << text;
  EXPECT_TRUE(contains(text, "50.0%")) << text;
}

TEST(CommSummary, UnevenDomainsShowTheRange) {
  CommRecord record;
  record.ranks = 12;
  record.nodes = 2;
  record.nvlDomains = 2;
  record.minRanksPerDomain = 4;
  record.maxRanksPerDomain = 8;
  EXPECT_TRUE(contains(describeComm(record, ChannelCap{}, "", 5), "2 NVLink domains of 4-8 ranks"));
}

}  // namespace
}  // namespace nccl_moe
