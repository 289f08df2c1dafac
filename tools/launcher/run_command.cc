#include "run_command.h"

#include <csignal>

#include "poll_wait.h"
#include "rank_output.h"

namespace nccl_moe::launcher {

CommandResult runCommand(const ChildSpec& spec, const std::string& input, double timeoutSeconds,
                         SignalPipe& signals) {
  ChildSpec piped = spec;
  piped.pipeInput = true;
  piped.captureOutput = true;
  ChildProcess child = ChildProcess::spawn(piped);
  writeAll(child.input().get(), input);  // a few bytes: fits the pipe buffer, never blocks long
  child.input().reset();
  setNonBlocking(child.output().get());

  CommandResult result;
  const Clock::time_point deadline = deadlineAfter(timeoutSeconds);
  while (!child.tryReap() && Clock::now() < deadline) {
    std::vector<pollfd> entries{{signals.fd(), POLLIN, 0}};
    if (child.output().valid()) entries.push_back({child.output().get(), POLLIN, 0});
    pollUntil(entries, deadline);
    if (entries[0].revents != 0) signals.drain();
    if (entries.size() > 1 && entries[1].revents != 0 &&
        !readAvailable(child.output().get(), result.output)) {
      child.output().reset();
    }
  }
  if (child.output().valid()) readAvailable(child.output().get(), result.output);
  result.status = child.status();
  if (!result.status) child.signalGroup(SIGKILL);  // the destructor reaps it
  return result;
}

}  // namespace nccl_moe::launcher
