#include <gtest/gtest.h>

#include "rank_environment.h"
#include "tools/bootstrap/id_distribution.h"
#include "tools/bootstrap/rank_layout.h"
#include "tools/bootstrap/unique_id_hex.h"

namespace nccl_moe::launcher {
namespace {

ncclUniqueId sampleId() {
  ncclUniqueId id{};
  for (size_t i = 0; i < sizeof(id.internal); ++i) id.internal[i] = static_cast<char>(i * 37 + 11);
  return id;
}

struct Fixture {
  LaunchOptions options;
  JobFacts facts;

  Fixture(int ranks, int domainSize, int gpus) {
    options.ranks = ranks;
    options.domainSize = domainSize;
    options.gpus = gpus;
    options.program = {"prog"};
    facts.uniqueIdHex = nccl_moe::encodeUniqueIdHex(sampleId());
    facts.masterPort = 12345;
  }

  RankEnvironments build(const EnvironmentBlock& inherited) const {
    return buildRankEnvironments(placeRanks(options, inherited, 0), options, inherited, facts);
  }
};

TEST(LauncherRankEnvironment, EveryRankKnowsWhoItIs) {
  const Fixture fixture(4, 2, 1);
  const auto inherited = EnvironmentBlock::fromEntries({"PATH=/bin", "UNRELATED=kept"});
  const RankEnvironments environments = fixture.build(inherited);
  ASSERT_EQ(environments.perRank.size(), 4u);
  EXPECT_TRUE(environments.warnings.empty());
  for (int rank = 0; rank < 4; ++rank) {
    const EnvironmentBlock& env = environments.perRank[rank];
    EXPECT_EQ(env.get("NCCL_MOE_RANK"), std::to_string(rank));
    EXPECT_EQ(env.get("NCCL_MOE_NRANKS"), "4");
    EXPECT_EQ(env.get("NCCL_MOE_LOCAL_RANK"), std::to_string(rank % 2));
    EXPECT_EQ(env.get("NCCL_MOE_DOMAIN_SIZE"), "2");
    EXPECT_EQ(env.get("NCCL_MOE_UNIQUE_ID"), fixture.facts.uniqueIdHex);
    EXPECT_EQ(env.get("RANK"), std::to_string(rank));
    EXPECT_EQ(env.get("WORLD_SIZE"), "4");
    EXPECT_EQ(env.get("LOCAL_RANK"), std::to_string(rank % 2));
    EXPECT_EQ(env.get("LOCAL_WORLD_SIZE"), "2");
    EXPECT_EQ(env.get("MASTER_ADDR"), "127.0.0.1");
    EXPECT_EQ(env.get("MASTER_PORT"), "12345");
    EXPECT_EQ(env.get("NCCL_NVLS_ENABLE"), "0");
    EXPECT_EQ(env.get("CUDA_VISIBLE_DEVICES"), "0");
    EXPECT_EQ(env.get("NCCL_HOSTID"), "nccl-moe-vnode" + std::to_string(rank / 2) + "-rank" +
                                          std::to_string(rank));
    EXPECT_EQ(env.get("PATH"), "/bin");
    EXPECT_EQ(env.get("UNRELATED"), "kept");
    EXPECT_FALSE(env.contains("CUDA_MPS_PIPE_DIRECTORY"));
  }
}

TEST(LauncherRankEnvironment, TheRankBootstrapReadsWhatTheLauncherSets) {
  const Fixture fixture(2, 1, 1);
  const EnvironmentBlock env = fixture.build(EnvironmentBlock{}).perRank[1];
  const auto lookup = [&](const char* name) -> const char* {
    const auto& variables = env.variables();
    const auto found = variables.find(name);
    return found == variables.end() ? nullptr : found->second.c_str();
  };
  const RankLayout layout = bootstrap::readRankLayout(lookup);
  EXPECT_EQ(layout.launcher, Launcher::kNcclMoeRun);
  EXPECT_EQ(layout.rank, 1);
  EXPECT_EQ(layout.size, 2);
  EXPECT_EQ(layout.localRank, 0);
  EXPECT_EQ(layout.localSize, 1);
  EXPECT_EQ(env.get("NCCL_MOE_DEVICE"), "0");  // each rank's one visible GPU, or the shared one
  const bootstrap::DistributedId id = bootstrap::distributeUniqueId(layout, lookup, [] {
    ADD_FAILURE() << "the launcher's id must be used, not a new one";
    return ncclUniqueId{};
  });
  EXPECT_EQ(id.source, "NCCL_MOE_UNIQUE_ID");
  const ncclUniqueId expected = sampleId();
  EXPECT_EQ(std::string(id.id.internal, sizeof(id.id.internal)),
            std::string(expected.internal, sizeof(expected.internal)));
}

TEST(LauncherRankEnvironment, UserPlacementSettingsAreKept) {
  const Fixture fixture(2, 2, 2);
  const auto inherited = EnvironmentBlock::fromEntries(
      {"MASTER_ADDR=10.0.0.1", "MASTER_PORT=999", "NCCL_NVLS_ENABLE=1"});
  const EnvironmentBlock env = fixture.build(inherited).perRank[0];
  EXPECT_EQ(env.get("MASTER_ADDR"), "10.0.0.1");
  EXPECT_EQ(env.get("MASTER_PORT"), "999");
  EXPECT_EQ(env.get("NCCL_NVLS_ENABLE"), "1");
}

TEST(LauncherRankEnvironment, OverrideEnvReplacesPlacementSettings) {
  Fixture fixture(2, 2, 1);
  fixture.options.overrideEnvironment = true;
  const auto inherited = EnvironmentBlock::fromEntries(
      {"MASTER_PORT=999", "NCCL_HOSTID=mine", "CUDA_VISIBLE_DEVICES=7", "NCCL_NVLS_ENABLE=1"});
  const EnvironmentBlock env = fixture.build(inherited).perRank[1];
  EXPECT_EQ(env.get("MASTER_PORT"), "12345");
  EXPECT_EQ(env.get("NCCL_HOSTID"), "nccl-moe-vnode0-rank1");
  EXPECT_EQ(env.get("CUDA_VISIBLE_DEVICES"), "0");
  EXPECT_EQ(env.get("NCCL_NVLS_ENABLE"), "1");  // the user's choice, never the launcher's
}

TEST(LauncherRankEnvironment, InheritedIdentityIsReplacedWithAWarning) {
  const Fixture fixture(2, 2, 1);
  const auto inherited = EnvironmentBlock::fromEntries({"RANK=7", "WORLD_SIZE=2"});
  const RankEnvironments environments = fixture.build(inherited);
  EXPECT_EQ(environments.perRank[0].get("RANK"), "0");
  ASSERT_EQ(environments.warnings.size(), 1u);
  EXPECT_NE(environments.warnings[0].find("RANK"), std::string::npos);
  EXPECT_EQ(environments.warnings[0].find("WORLD_SIZE"), std::string::npos);  // same value
}

TEST(LauncherRankEnvironment, MpsDirectoriesReachEveryRank) {
  Fixture fixture(2, 2, 1);
  fixture.facts.mpsVariables = {{"CUDA_MPS_PIPE_DIRECTORY", "/tmp/p"},
                                {"CUDA_MPS_LOG_DIRECTORY", "/tmp/l"}};
  for (const EnvironmentBlock& env : fixture.build(EnvironmentBlock{}).perRank) {
    EXPECT_EQ(env.get("CUDA_MPS_PIPE_DIRECTORY"), "/tmp/p");
    EXPECT_EQ(env.get("CUDA_MPS_LOG_DIRECTORY"), "/tmp/l");
  }
}

}  // namespace
}  // namespace nccl_moe::launcher
