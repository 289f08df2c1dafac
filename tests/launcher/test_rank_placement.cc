#include <gtest/gtest.h>

#include <set>

#include "rank_placement.h"

namespace nccl_moe::launcher {
namespace {

LaunchOptions optionsFor(int ranks, std::optional<int> domainSize, std::optional<int> gpus) {
  LaunchOptions options;
  options.ranks = ranks;
  options.domainSize = domainSize;
  options.gpus = gpus;
  options.program = {"prog"};
  return options;
}

std::vector<std::string> devicesOf(const JobPlacement& job) {
  std::vector<std::string> devices;
  for (const RankPlacement& placement : job.placements) {
    devices.push_back(placement.visibleDevice.value_or("none"));
  }
  return devices;
}

TEST(LauncherPlacement, DomainsAndLocalRanks) {
  const JobPlacement job = placeRanks(optionsFor(8, 4, 8), EnvironmentBlock{}, 0);
  ASSERT_EQ(job.placements.size(), 8u);
  EXPECT_EQ(job.domainSize, 4);
  for (int rank = 0; rank < 8; ++rank) {
    EXPECT_EQ(job.placements[rank].rank, rank);
    EXPECT_EQ(job.placements[rank].domainIndex, rank / 4);
    EXPECT_EQ(job.placements[rank].localRank, rank % 4);
  }
}

TEST(LauncherPlacement, DomainSizeDefaultsToTheEnvironmentThenToAllRanks) {
  EXPECT_EQ(placeRanks(optionsFor(6, std::nullopt, 1), EnvironmentBlock{}, 0).domainSize, 6);
  const auto withDomainSize = EnvironmentBlock::fromEntries({"NCCL_MOE_DOMAIN_SIZE=3"});
  EXPECT_EQ(placeRanks(optionsFor(6, std::nullopt, 1), withDomainSize, 0).domainSize, 3);
  EXPECT_EQ(placeRanks(optionsFor(6, 2, 1), withDomainSize, 0).domainSize, 2);
  const auto badDomainSize = EnvironmentBlock::fromEntries({"NCCL_MOE_DOMAIN_SIZE=4"});
  EXPECT_THROW(placeRanks(optionsFor(6, std::nullopt, 1), badDomainSize, 0), UsageError);
}

TEST(LauncherPlacement, RanksSharingAGpuGetOneHostIdEach) {
  const JobPlacement job = placeRanks(optionsFor(4, 2, 2), EnvironmentBlock{}, 0);
  EXPECT_TRUE(job.ranksShareGpu);
  EXPECT_EQ(devicesOf(job), (std::vector<std::string>{"0", "1", "0", "1"}));
  std::set<std::string> hostIds;
  for (const RankPlacement& placement : job.placements) hostIds.insert(placement.hostId.value());
  EXPECT_EQ(hostIds.size(), 4u);
  EXPECT_EQ(job.placements[3].hostId, "nccl-moe-vnode1-rank3");
}

TEST(LauncherPlacement, OneGpuPerRankLeavesTheHostIdAlone) {
  const JobPlacement job = placeRanks(optionsFor(4, 2, std::nullopt), EnvironmentBlock{}, 4);
  EXPECT_FALSE(job.ranksShareGpu);
  EXPECT_EQ(devicesOf(job), (std::vector<std::string>{"0", "1", "2", "3"}));
  for (const RankPlacement& placement : job.placements) EXPECT_FALSE(placement.hostId);
}

TEST(LauncherPlacement, NoGpuMeansNoDeviceButDistinctHostIds) {
  const JobPlacement job = placeRanks(optionsFor(2, 1, std::nullopt), EnvironmentBlock{}, 0);
  EXPECT_TRUE(job.ranksShareGpu);
  EXPECT_EQ(devicesOf(job), (std::vector<std::string>{"none", "none"}));
  EXPECT_NE(job.placements[0].hostId, job.placements[1].hostId);
}

TEST(LauncherPlacement, TheUsersVisibleDevicesAreThePool) {
  const auto inherited = EnvironmentBlock::fromEntries({"CUDA_VISIBLE_DEVICES=3, 5"});
  EXPECT_EQ(devicesOf(placeRanks(optionsFor(4, 4, std::nullopt), inherited, 2)),
            (std::vector<std::string>{"3", "5", "3", "5"}));
  EXPECT_EQ(devicesOf(placeRanks(optionsFor(2, 2, 1), inherited, 2)),
            (std::vector<std::string>{"3", "3"}));
  EXPECT_THROW(placeRanks(optionsFor(2, 2, 3), inherited, 2), UsageError);

  LaunchOptions overriding = optionsFor(3, 3, 3);
  overriding.overrideEnvironment = true;
  EXPECT_EQ(devicesOf(placeRanks(overriding, inherited, 2)),
            (std::vector<std::string>{"0", "1", "2"}));
}

TEST(LauncherPlacement, AUserHostIdIsKeptWithAWarningUnlessAFlagSaysOtherwise) {
  const auto inherited = EnvironmentBlock::fromEntries({"NCCL_HOSTID=mine"});
  const JobPlacement kept = placeRanks(optionsFor(2, 2, 1), inherited, 0);
  EXPECT_FALSE(kept.placements[0].hostId);
  ASSERT_EQ(kept.warnings.size(), 1u);
  EXPECT_NE(kept.warnings[0].find("NCCL_HOSTID"), std::string::npos);

  LaunchOptions perRank = optionsFor(2, 2, 1);
  perRank.hostIdMode = HostIdMode::kPerRank;
  EXPECT_EQ(placeRanks(perRank, inherited, 0).placements[1].hostId, "nccl-moe-vnode0-rank1");
}

TEST(LauncherPlacement, HostIdPerDomainNeedsOneGpuPerRankOfADomain) {
  LaunchOptions options = optionsFor(4, 2, 2);
  options.hostIdMode = HostIdMode::kPerDomain;
  const JobPlacement job = placeRanks(options, EnvironmentBlock{}, 0);
  EXPECT_EQ(job.placements[0].hostId, "nccl-moe-vnode0");
  EXPECT_EQ(job.placements[1].hostId, "nccl-moe-vnode0");
  EXPECT_EQ(job.placements[2].hostId, "nccl-moe-vnode1");

  options.gpus = 1;
  EXPECT_THROW(placeRanks(options, EnvironmentBlock{}, 0), UsageError);
}

TEST(LauncherPlacement, HostIdNoneNeverSetsOne) {
  LaunchOptions options = optionsFor(4, 2, 1);
  options.hostIdMode = HostIdMode::kNone;
  for (const RankPlacement& placement : placeRanks(options, EnvironmentBlock{}, 0).placements) {
    EXPECT_FALSE(placement.hostId);
  }
}

}  // namespace
}  // namespace nccl_moe::launcher
