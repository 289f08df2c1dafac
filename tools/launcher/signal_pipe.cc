#include "signal_pipe.h"

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace nccl_moe::launcher {
namespace {

volatile sig_atomic_t gWriteFd = -1;
volatile sig_atomic_t gStopSignal = 0;

void onSignal(int signal) {
  const int savedErrno = errno;
  if ((signal == SIGINT || signal == SIGTERM) && gStopSignal == 0) gStopSignal = signal;
  const char byte = static_cast<char>(signal);
  // A full pipe already guarantees a wake-up, so a failed write loses nothing.
  [[maybe_unused]] const ssize_t written = ::write(gWriteFd, &byte, 1);
  errno = savedErrno;
}

void install(int signal, void (*handler)(int), struct sigaction* old) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART | (signal == SIGCHLD ? SA_NOCLDSTOP : 0);
  if (::sigaction(signal, &action, old) != 0) {
    throw std::system_error(errno, std::generic_category(), "sigaction");
  }
}

}  // namespace

SignalPipe::SignalPipe() {
  if (gWriteFd >= 0) throw std::logic_error("only one SignalPipe may exist per process");
  Pipe pipe = makePipe();
  setNonBlocking(pipe.read.get());
  setNonBlocking(pipe.write.get());
  read_ = std::move(pipe.read);
  write_ = std::move(pipe.write);
  gWriteFd = write_.get();
  gStopSignal = 0;
  install(SIGCHLD, onSignal, &oldChild_);
  install(SIGINT, onSignal, &oldInterrupt_);
  install(SIGTERM, onSignal, &oldTerminate_);
  install(SIGPIPE, SIG_IGN, &oldPipe_);
}

SignalPipe::~SignalPipe() {
  ::sigaction(SIGCHLD, &oldChild_, nullptr);
  ::sigaction(SIGINT, &oldInterrupt_, nullptr);
  ::sigaction(SIGTERM, &oldTerminate_, nullptr);
  ::sigaction(SIGPIPE, &oldPipe_, nullptr);
  gWriteFd = -1;
}

void SignalPipe::drain() {
  char buffer[64];
  while (::read(read_.get(), buffer, sizeof(buffer)) > 0) {
  }
}

int SignalPipe::stopSignal() const { return gStopSignal; }

}  // namespace nccl_moe::launcher
