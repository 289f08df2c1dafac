// Turns SIGCHLD, SIGINT and SIGTERM into readable bytes on a pipe, so the launcher waits for
// "a child exited", "output arrived" and "stop requested" in one poll() (the self-pipe trick).
// SIGPIPE is ignored while it lives: a closed stdout must not kill the launcher and leave ranks
// or an MPS daemon behind. One instance per process; the destructor restores the old handlers.
#pragma once

#include <csignal>

#include "unique_fd.h"

namespace nccl_moe::launcher {

class SignalPipe {
 public:
  SignalPipe();  // throws std::logic_error when another instance exists
  ~SignalPipe();
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;

  int fd() const { return read_.get(); }  // readable when a signal arrived since the last drain()
  void drain();                           // empties the pipe (never blocks)

  // The first SIGINT or SIGTERM received while installed, 0 when none.
  int stopSignal() const;

 private:
  UniqueFd read_;
  UniqueFd write_;
  struct sigaction oldChild_{}, oldInterrupt_{}, oldTerminate_{}, oldPipe_{};
};

}  // namespace nccl_moe::launcher
