// How a child process ended, as waitpid() reported it.
#pragma once

#include <string>

namespace nccl_moe::launcher {

struct ExitStatus {
  bool bySignal = false;
  int value = 0;  // the exit code, or the signal number when bySignal

  static ExitStatus fromWaitStatus(int waitStatus);
  bool success() const { return !bySignal && value == 0; }
  // The shell's convention: the exit code, or 128 + signal number.
  int shellCode() const { return bySignal ? 128 + value : value; }
  std::string describe() const;  // "exit 3", "signal 9 (Killed)"
};

}  // namespace nccl_moe::launcher
