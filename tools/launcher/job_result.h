// How a job of ranks ended, and what the launcher reports about it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "exit_status.h"

namespace nccl_moe::launcher {

enum class StopReason {
  kNone,         // every rank ended by itself
  kRankFailed,   // a rank failed first; the others were given --fail-grace, then stopped
  kTimeout,      // --timeout ran out
  kInterrupted,  // the launcher got SIGINT or SIGTERM
};

struct RankResult {
  int rank = 0;
  std::optional<ExitStatus> status;  // empty: it did not even die of SIGKILL in time
  double wallSeconds = 0;
  std::string note;  // why the launcher stopped it, if it did
};

struct JobResult {
  std::vector<RankResult> ranks;
  StopReason reason = StopReason::kNone;
  int firstFailedRank = -1;         // kRankFailed: the rank that failed first
  int stopSignal = 0;               // kInterrupted: the signal the launcher got
  std::vector<int> runningAtTimeout;  // kTimeout: ranks still running when time ran out

  bool allSucceeded() const;
  // 0 only when every rank exited 0; see usageText() for the other codes.
  int exitCode() const;
};

// The table printed at the end: rank, exit status or signal, wall time, note.
std::string formatSummary(const JobResult& result);

}  // namespace nccl_moe::launcher
