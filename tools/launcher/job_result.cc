#include "job_result.h"

#include <cstdio>

namespace nccl_moe::launcher {
namespace {

constexpr int kTimeoutExitCode = 124;  // as timeout(1)
constexpr int kUnknownFailureExitCode = 1;

}  // namespace

bool JobResult::allSucceeded() const {
  for (const RankResult& rank : ranks) {
    if (!rank.status || !rank.status->success()) return false;
  }
  return true;
}

int JobResult::exitCode() const {
  switch (reason) {
    case StopReason::kTimeout:
      return kTimeoutExitCode;
    case StopReason::kInterrupted:
      return 128 + stopSignal;
    case StopReason::kRankFailed:
      for (const RankResult& rank : ranks) {
        if (rank.rank == firstFailedRank && rank.status && rank.status->shellCode() != 0) {
          return rank.status->shellCode();
        }
      }
      return kUnknownFailureExitCode;
    case StopReason::kNone:
      break;
  }
  return allSucceeded() ? 0 : kUnknownFailureExitCode;
}

std::string formatSummary(const JobResult& result) {
  std::string table = "nccl-moe-run: summary\n  rank  status                      wall s  note\n";
  for (const RankResult& rank : result.ranks) {
    const std::string status = rank.status ? rank.status->describe() : "still running";
    char line[512];
    std::snprintf(line, sizeof(line), "  %4d  %-26s %8.3f  %s\n", rank.rank, status.c_str(),
                  rank.wallSeconds, rank.note.c_str());
    table += line;
  }
  return table;
}

}  // namespace nccl_moe::launcher
