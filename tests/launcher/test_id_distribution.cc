// Which way the unique id travels: the launcher's NCCL_MOE_UNIQUE_ID, a fresh one for a job of
// one, else rank 0's TCP store at the address and port the variables name.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "fake_environment.h"
#include "tools/bootstrap/id_distribution.h"
#include "tools/bootstrap/socket_io.h"
#include "tools/bootstrap/unique_id_hex.h"

namespace nccl_moe::bootstrap {
namespace {

ncclUniqueId sampleId(int seed) {
  ncclUniqueId id{};
  for (size_t i = 0; i < sizeof(id.internal); ++i) id.internal[i] = static_cast<char>(i * 7 + seed);
  return id;
}

std::string bytesOf(const ncclUniqueId& id) { return std::string(id.internal, sizeof(id.internal)); }

IdMaker neverCalled() {
  return [] {
    ADD_FAILURE() << "no id may be made here";
    return ncclUniqueId{};
  };
}

TEST(BootstrapIdDistribution, TheLaunchersIdWins) {
  const FakeEnvironment env{{{"NCCL_MOE_UNIQUE_ID", encodeUniqueIdHex(sampleId(3))}, {"MASTER_ADDR", "nowhere"}}};
  const DistributedId id = distributeUniqueId(RankLayout{Launcher::kTorchrun, 2, 4, 2, 4}, env.lookup(), neverCalled());
  EXPECT_EQ(bytesOf(id.id), bytesOf(sampleId(3)));
  EXPECT_EQ(id.source, "NCCL_MOE_UNIQUE_ID");
}

TEST(BootstrapIdDistribution, AMalformedLauncherIdIsNamed) {
  const FakeEnvironment env{{{"NCCL_MOE_UNIQUE_ID", "abc"}}};
  EXPECT_EQ(bootstrapErrorOf([&] { distributeUniqueId(RankLayout{}, env.lookup(), neverCalled()); }),
            "NCCL_MOE_UNIQUE_ID is malformed: an NCCL unique id in hex has 256 characters, this one has 3");
}

TEST(BootstrapIdDistribution, AJobOfOneMakesItsOwn) {
  const DistributedId id = distributeUniqueId(RankLayout{}, FakeEnvironment{}.lookup(), [] { return sampleId(9); });
  EXPECT_EQ(bytesOf(id.id), bytesOf(sampleId(9)));
  EXPECT_EQ(id.source, "made here (a job of one rank)");
}

TEST(BootstrapIdDistribution, OtherwiseRankZeroServesItAtMasterAddrAndPort) {
  constexpr int kRanks = 4;
  const int port = localPort(listenOn(0).get());
  const FakeEnvironment env{{{"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(port)},
                             {"TORCHELASTIC_RUN_ID", "job-1"}, {"NCCL_MOE_BOOTSTRAP_TIMEOUT", "20"}}};
  std::atomic<int> made{0};
  std::vector<DistributedId> ids(kRanks);
  std::vector<std::string> errors(kRanks);
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < kRanks; ++rank) {
    ranks.emplace_back([&, rank] {
      const RankLayout layout{Launcher::kTorchrun, rank, kRanks, rank, kRanks};
      errors[rank] = bootstrapErrorOf([&] {
        ids[rank] = distributeUniqueId(layout, env.lookup(), [&] {
          ++made;
          return sampleId(5);
        });
      });
    });
  }
  for (std::thread& rank : ranks) rank.join();
  EXPECT_EQ(made.load(), 1);  // rank 0 alone makes it
  for (int rank = 0; rank < kRanks; ++rank) {
    EXPECT_EQ(errors[rank], "no error") << "rank " << rank;
    EXPECT_EQ(bytesOf(ids[rank].id), bytesOf(sampleId(5))) << "rank " << rank;
    EXPECT_EQ(ids[rank].source, "TCP store at 127.0.0.1:" + std::to_string(port));
  }
}

TEST(BootstrapIdDistribution, TheTimeoutVariableBoundsTheWaitForRankZero) {
  const int port = localPort(listenOn(0).get());
  const FakeEnvironment env{{{"NCCL_MOE_BOOTSTRAP_PORT", std::to_string(port)}, {"NCCL_MOE_BOOTSTRAP_TIMEOUT", "1"}}};
  const auto start = Clock::now();
  const std::string error = bootstrapErrorOf(
      [&] { distributeUniqueId(RankLayout{Launcher::kSlurm, 1, 2, 1, 2}, env.lookup(), neverCalled()); });
  EXPECT_NE(error.find("rank 1: no unique id from rank 0 at 127.0.0.1:" + std::to_string(port) + " within 1 s"),
            std::string::npos)
      << error;
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 4.0);
}

}  // namespace
}  // namespace nccl_moe::bootstrap
