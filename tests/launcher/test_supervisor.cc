#include <gtest/gtest.h>
#include <fcntl.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>

#include "poll_wait.h"
#include "supervisor.h"
#include "temp_dir.h"

namespace nccl_moe::launcher {
namespace {

using std::chrono::duration;

std::string readFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Runs one shell script per rank (rank number in $R) with short graces; captures what the
// supervisor prints.
class LauncherSupervisor : public testing::Test {
 protected:
  TempDir dir_{"/tmp", "supervisor-test-"};
  SupervisorSettings settings_;
  std::string echo_, messages_;
  double seconds_ = 0;

  void SetUp() override {
    settings_.failGraceSeconds = 0.2;
    settings_.killGraceSeconds = 0.2;
  }

  JobResult run(const std::vector<std::string>& scripts) {
    std::vector<ChildSpec> specs;
    for (size_t rank = 0; rank < scripts.size(); ++rank) {
      specs.push_back(ChildSpec{"/bin/sh", {"sh", "-c", scripts[rank]},
                                {"PATH=/usr/bin:/bin", "R=" + std::to_string(rank)}});
    }
    const std::string echoPath = dir_.path() + "/echo", messagePath = dir_.path() + "/messages";
    UniqueFd echo(::open(echoPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    UniqueFd messages(::open(messagePath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    settings_.echoFd = echo.get();
    settings_.messageFd = messages.get();
    SignalPipe signals;
    const auto start = Clock::now();
    JobResult result = superviseRanks(specs, settings_, signals);
    seconds_ = duration<double>(Clock::now() - start).count();
    echo_ = readFile(echoPath);
    messages_ = readFile(messagePath);
    return result;
  }
};

TEST_F(LauncherSupervisor, AllRanksSucceed) {
  const JobResult job = run({"echo zero", "echo one; echo more"});
  EXPECT_EQ(job.reason, StopReason::kNone);
  EXPECT_EQ(job.exitCode(), 0);
  ASSERT_EQ(job.ranks.size(), 2u);
  for (const RankResult& rank : job.ranks) EXPECT_TRUE(rank.status->success());
  EXPECT_NE(echo_.find("[rank 0] zero\n"), std::string::npos);
  EXPECT_NE(echo_.find("[rank 1] one\n[rank 1] more\n"), std::string::npos);
  EXPECT_EQ(messages_, "");
}

TEST_F(LauncherSupervisor, FailingRankStopsTheOthersAfterTheGrace) {
  const JobResult job = run({"sleep 30", "exit 7", "sleep 30"});
  EXPECT_EQ(job.reason, StopReason::kRankFailed);
  EXPECT_EQ(job.firstFailedRank, 1);
  EXPECT_EQ(job.exitCode(), 7);
  EXPECT_EQ(job.ranks[0].status->value, SIGTERM);
  EXPECT_EQ(job.ranks[0].note, "stopped: rank 1 failed");
  EXPECT_GE(job.ranks[0].wallSeconds, 0.2);
  EXPECT_LT(seconds_, 5);
  EXPECT_NE(messages_.find("rank 1 failed (exit 7)"), std::string::npos);
}

TEST_F(LauncherSupervisor, OthersFinishingWithinTheGraceAreNotKilled) {
  settings_.failGraceSeconds = 10;
  const JobResult job = run({"exit 2", "sleep 0.2; echo done"});
  EXPECT_EQ(job.exitCode(), 2);
  EXPECT_TRUE(job.ranks[1].status->success());
  EXPECT_EQ(job.ranks[1].note, "");
  EXPECT_LT(seconds_, 5);
}

TEST_F(LauncherSupervisor, RankKilledBySignalIsAFailure) {
  const JobResult job = run({"kill -SEGV $$", "sleep 30"});
  EXPECT_EQ(job.firstFailedRank, 0);
  EXPECT_EQ(job.exitCode(), 128 + SIGSEGV);
}

TEST_F(LauncherSupervisor, TimeoutStopsHungRanksAndNamesThem) {
  settings_.timeoutSeconds = 0.3;
  const JobResult job = run({"true", "sleep 30", "sleep 30"});
  EXPECT_EQ(job.reason, StopReason::kTimeout);
  EXPECT_EQ(job.exitCode(), 124);
  EXPECT_EQ(job.runningAtTimeout, (std::vector<int>{1, 2}));
  EXPECT_EQ(job.ranks[1].note, "stopped: timeout");
  EXPECT_NE(messages_.find("timeout after 0.3 s; ranks still running: 1, 2"), std::string::npos);
  EXPECT_LT(seconds_, 5);
}

TEST_F(LauncherSupervisor, RanksIgnoringSigtermGetSigkill) {
  settings_.timeoutSeconds = 0.2;
  const JobResult job = run({"trap '' TERM; sleep 30"});
  EXPECT_EQ(job.ranks[0].status->value, SIGKILL);
  EXPECT_EQ(job.ranks[0].note, "stopped: timeout (SIGKILL)");
  EXPECT_NE(messages_.find("ranks 0 ignored SIGTERM; sending SIGKILL"), std::string::npos);
  EXPECT_LT(seconds_, 5);
}

TEST_F(LauncherSupervisor, InterruptStopsEveryRank) {
  settings_.killGraceSeconds = 1;
  std::vector<ChildSpec> specs{{"/bin/sh", {"sh", "-c", "sleep 30"}, {}}};
  SignalPipe signals;
  ::kill(::getpid(), SIGTERM);  // caught by the signal pipe, as from a user
  UniqueFd devNull(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  settings_.echoFd = settings_.messageFd = devNull.get();
  const JobResult job = superviseRanks(specs, settings_, signals);
  EXPECT_EQ(job.reason, StopReason::kInterrupted);
  EXPECT_EQ(job.exitCode(), 128 + SIGTERM);
  EXPECT_EQ(job.ranks[0].status->value, SIGTERM);
  EXPECT_EQ(job.ranks[0].note, "launcher interrupted");
}

TEST_F(LauncherSupervisor, OutputDirectoryGetsOneLogPerRank) {
  settings_.outputDir = dir_.path() + "/logs";
  run({"echo a; echo b >&2", "printf 'no newline'"});
  EXPECT_EQ(readFile(dir_.path() + "/logs/rank-0.log"), "a\nb\n");
  EXPECT_EQ(readFile(dir_.path() + "/logs/rank-1.log"), "no newline");
  EXPECT_NE(echo_.find("[rank 1] no newline\n"), std::string::npos);
}

TEST_F(LauncherSupervisor, UnstartableRankIsAnErrorAndStopsTheStartedOnes) {
  std::vector<ChildSpec> specs{{"/bin/sh", {"sh", "-c", "sleep 30"}, {}},
                               {"/nonexistent", {"x"}, {}}};
  SignalPipe signals;
  const auto start = Clock::now();
  try {
    superviseRanks(specs, settings_, signals);
    FAIL() << "no error";
  } catch (const SpawnError& error) {
    EXPECT_EQ(std::string(error.what()),
              "rank 1: cannot execute '/nonexistent': No such file or directory");
  }
  EXPECT_LT(duration<double>(Clock::now() - start).count(), 5);
}

}  // namespace
}  // namespace nccl_moe::launcher
