// One child process in its own process group, started with fork/execve. The group lets the
// launcher stop a rank together with anything the rank started (a shell's children, helpers).
// The destructor never leaves a child behind: an unreaped child's group gets SIGKILL and is
// reaped (bounded wait, for processes stuck in the kernel).
#pragma once

#include <sys/types.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "exit_status.h"
#include "unique_fd.h"

namespace nccl_moe::launcher {

struct ChildSpec {
  std::string executable;                // a path for execve (see findExecutable)
  std::vector<std::string> arguments;    // argv, argv[0] included
  std::vector<std::string> environment;  // the complete environment, "NAME=value" each
  bool pipeInput = false;                // stdin: a pipe (input()) instead of /dev/null
  bool captureOutput = true;             // stdout and stderr: one pipe (output()), else inherited
};

class SpawnError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ChildProcess {
 public:
  // Returns once the program has been exec'ed; throws SpawnError when fork or exec failed.
  static ChildProcess spawn(const ChildSpec& spec);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) = delete;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running() const { return !status_.has_value(); }
  const std::optional<ExitStatus>& status() const { return status_; }
  UniqueFd& input() { return input_; }
  UniqueFd& output() { return output_; }

  // waitpid without blocking; returns the status once the child has ended.
  std::optional<ExitStatus> tryReap();
  // Sends `signal` to the child's process group while the child is unreaped (after reaping, the
  // group id may belong to someone else).
  void signalGroup(int signal) const;

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}

  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
  UniqueFd input_;
  UniqueFd output_;
};

}  // namespace nccl_moe::launcher
