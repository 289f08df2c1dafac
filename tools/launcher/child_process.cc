#include "child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <utility>

namespace nccl_moe::launcher {
namespace {

constexpr int kExecReportTimeoutMs = 30000;
constexpr int kReapAfterKillTimeoutMs = 5000;

std::vector<char*> pointersTo(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (const std::string& s : strings) pointers.push_back(const_cast<char*>(s.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

// Runs in the forked child: only async-signal-safe calls until execve.
[[noreturn]] void becomeProgram(const char* executable, char* const* argv, char* const* envp,
                                int stdinFd, int outputFd, int errorReportFd) {
  for (int signal : {SIGCHLD, SIGINT, SIGTERM, SIGPIPE}) ::signal(signal, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::setpgid(0, 0);
  ::dup2(stdinFd, STDIN_FILENO);
  if (outputFd >= 0) {
    ::dup2(outputFd, STDOUT_FILENO);
    ::dup2(outputFd, STDERR_FILENO);
  }
  // Descriptors the launcher inherited or opened without O_CLOEXEC (NCCL's bootstrap socket)
  // stay out of the ranks. Failure (kernel < 5.11) only leaks descriptors.
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  ::execve(executable, argv, envp);
  const int error = errno;
  [[maybe_unused]] const ssize_t written = ::write(errorReportFd, &error, sizeof(error));
  ::_exit(127);
}

// Waits for the exec report: EOF (exec succeeded, the pipe closed on exec) or an errno.
int readExecError(int fd) {
  pollfd entry{fd, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&entry, 1, kExecReportTimeoutMs);
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) return 0;  // no report in time: treat as started, supervision takes over
  int error = 0;
  ssize_t got;
  do {
    got = ::read(fd, &error, sizeof(error));
  } while (got < 0 && errno == EINTR);
  return got == sizeof(error) ? error : 0;
}

}  // namespace

ChildProcess ChildProcess::spawn(const ChildSpec& spec) {
  if (spec.arguments.empty()) throw SpawnError("cannot start a program without argv[0]");
  std::vector<char*> argv = pointersTo(spec.arguments);
  std::vector<char*> envp = pointersTo(spec.environment);

  UniqueFd devNull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devNull.valid()) throw SpawnError(std::string("cannot open /dev/null: ") + strerror(errno));
  Pipe input, output;
  if (spec.pipeInput) input = makePipe();
  if (spec.captureOutput) output = makePipe();
  Pipe execReport = makePipe();

  const pid_t pid = ::fork();
  if (pid < 0) throw SpawnError(std::string("fork failed: ") + strerror(errno));
  if (pid == 0) {
    becomeProgram(spec.executable.c_str(), argv.data(), envp.data(),
                  spec.pipeInput ? input.read.get() : devNull.get(),
                  spec.captureOutput ? output.write.get() : -1, execReport.write.get());
  }
  // Also from the parent, so that the group exists before anyone signals it.
  ::setpgid(pid, pid);
  ChildProcess child(pid);
  execReport.write.reset();
  if (const int error = readExecError(execReport.read.get()); error != 0) {
    child.tryReap();  // it exits 127 right after the report; the destructor reaps otherwise
    throw SpawnError("cannot execute '" + spec.executable + "': " + strerror(error));
  }
  if (spec.pipeInput) child.input_ = std::move(input.write);
  if (spec.captureOutput) child.output_ = std::move(output.read);
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      status_(std::move(other.status_)),
      input_(std::move(other.input_)),
      output_(std::move(other.output_)) {}

ChildProcess::~ChildProcess() {
  if (pid_ < 0 || status_) return;
  signalGroup(SIGKILL);
  for (int waitedMs = 0; waitedMs < kReapAfterKillTimeoutMs && !tryReap(); waitedMs += 10) {
    const timespec tenMs{0, 10 * 1000 * 1000};
    ::nanosleep(&tenMs, nullptr);
  }
}

std::optional<ExitStatus> ChildProcess::tryReap() {
  if (status_ || pid_ < 0) return status_;
  int waitStatus = 0;
  pid_t reaped;
  do {
    reaped = ::waitpid(pid_, &waitStatus, WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == pid_) status_ = ExitStatus::fromWaitStatus(waitStatus);
  return status_;
}

void ChildProcess::signalGroup(int signal) const {
  if (pid_ > 0 && !status_) ::kill(-pid_, signal);
}

}  // namespace nccl_moe::launcher
