// Runs a short helper command to completion with a time limit (the MPS control program).
#pragma once

#include <optional>
#include <string>

#include "child_process.h"
#include "signal_pipe.h"

namespace nccl_moe::launcher {

struct CommandResult {
  std::optional<ExitStatus> status;  // empty: killed because it ran past the limit
  std::string output;                // stdout and stderr together
};

// Feeds `input` to the command's stdin, then waits until the command itself has ended (not for
// end of output: a daemon it started may keep the pipe open). Throws SpawnError.
CommandResult runCommand(const ChildSpec& spec, const std::string& input, double timeoutSeconds,
                         SignalPipe& signals);

}  // namespace nccl_moe::launcher
