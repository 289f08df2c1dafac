#include <gtest/gtest.h>

#include <csignal>

#include "job_result.h"

namespace nccl_moe::launcher {
namespace {

RankResult ended(int rank, bool bySignal, int value, const std::string& note = "") {
  return RankResult{rank, ExitStatus{bySignal, value}, 0.5, note};
}

TEST(LauncherJobResult, ZeroOnlyWhenEveryRankExitsZero) {
  JobResult job;
  job.ranks = {ended(0, false, 0), ended(1, false, 0)};
  EXPECT_EQ(job.exitCode(), 0);
  job.ranks.push_back(RankResult{2, std::nullopt, 1.0, "stuck"});
  EXPECT_EQ(job.exitCode(), 1);
}

TEST(LauncherJobResult, TheFirstFailureDecides) {
  JobResult job;
  job.ranks = {ended(0, false, 0), ended(1, false, 3), ended(2, true, SIGTERM)};
  job.reason = StopReason::kRankFailed;
  job.firstFailedRank = 1;
  EXPECT_EQ(job.exitCode(), 3);
  job.firstFailedRank = 2;
  EXPECT_EQ(job.exitCode(), 128 + SIGTERM);
}

TEST(LauncherJobResult, TimeoutAndInterrupt) {
  JobResult job;
  job.ranks = {ended(0, true, SIGKILL)};
  job.reason = StopReason::kTimeout;
  EXPECT_EQ(job.exitCode(), 124);
  job.reason = StopReason::kInterrupted;
  job.stopSignal = SIGINT;
  EXPECT_EQ(job.exitCode(), 130);
}

TEST(LauncherJobResult, SummaryHasOneRowPerRank) {
  JobResult job;
  job.ranks = {ended(0, false, 0), ended(1, true, SIGKILL, "stopped: timeout"),
               RankResult{2, std::nullopt, 2.0, ""}};
  const std::string summary = formatSummary(job);
  EXPECT_NE(summary.find("rank  status"), std::string::npos);
  EXPECT_NE(summary.find("   0  exit 0"), std::string::npos);
  EXPECT_NE(summary.find("   1  signal 9 ("), std::string::npos);
  EXPECT_NE(summary.find("stopped: timeout"), std::string::npos);
  EXPECT_NE(summary.find("   2  still running"), std::string::npos);
}

}  // namespace
}  // namespace nccl_moe::launcher
