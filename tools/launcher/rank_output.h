// One rank's output stream: split into lines, echoed as "[rank r] line" to the launcher's output
// (one write per line, so ranks never interleave inside a line), and copied unprefixed to
// rank-<r>.log when an output directory is set.
#pragma once

#include <string>
#include <string_view>

#include "unique_fd.h"

namespace nccl_moe::launcher {

class RankOutput {
 public:
  // `echoFd` is not owned. `logPath` empty: no log file. Throws std::system_error when the log
  // file cannot be created.
  RankOutput(int rank, int echoFd, const std::string& logPath);

  void append(std::string_view bytes);
  void finish();  // emits a last line that had no newline

 private:
  void emitLine(std::string_view line);  // `line` without its newline

  std::string prefix_;
  int echoFd_;
  UniqueFd log_;
  std::string pending_;  // bytes after the last newline
};

// write() all of `bytes`, retrying on EINTR and short writes; gives up silently on other errors
// (a closed stdout must not stop the supervision).
void writeAll(int fd, std::string_view bytes);

}  // namespace nccl_moe::launcher
