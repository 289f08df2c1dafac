#include "exit_status.h"

#include <sys/wait.h>

#include <cstring>

namespace nccl_moe::launcher {

ExitStatus ExitStatus::fromWaitStatus(int waitStatus) {
  if (WIFSIGNALED(waitStatus)) return ExitStatus{true, WTERMSIG(waitStatus)};
  return ExitStatus{false, WEXITSTATUS(waitStatus)};
}

std::string ExitStatus::describe() const {
  if (!bySignal) return "exit " + std::to_string(value);
  return "signal " + std::to_string(value) + " (" + ::strsignal(value) + ")";
}

}  // namespace nccl_moe::launcher
