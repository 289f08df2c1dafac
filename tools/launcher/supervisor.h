// Runs the ranks and watches them until all have ended: forwards their output, stops them all
// when one fails (after --fail-grace), when --timeout runs out or when the launcher is
// interrupted (SIGTERM, then SIGKILL after --kill-grace), and reports how each one ended.
// Every wait is a poll() on the ranks' output pipes and the signal pipe, with a deadline.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "child_process.h"
#include "job_result.h"
#include "signal_pipe.h"

namespace nccl_moe::launcher {

struct SupervisorSettings {
  std::optional<double> timeoutSeconds;
  double failGraceSeconds = 30;
  double killGraceSeconds = 10;
  std::optional<std::string> outputDir;  // rank-<r>.log files go here
  int echoFd = 1;                        // "[rank r] line" goes here
  int messageFd = 2;                     // the launcher's own messages
};

// `specs[r]` starts rank r. Throws SpawnError (after stopping the ranks already started) when a
// rank cannot be started, std::system_error when a log file cannot be created.
JobResult superviseRanks(const std::vector<ChildSpec>& specs, const SupervisorSettings& settings,
                         SignalPipe& signals);

}  // namespace nccl_moe::launcher
