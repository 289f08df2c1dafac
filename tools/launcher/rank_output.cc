#include "rank_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace nccl_moe::launcher {
namespace {

// A "line" this long without a newline is emitted as is: memory stays bounded.
constexpr size_t kMaxPendingBytes = 1 << 16;

}  // namespace

void writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;
    bytes.remove_prefix(static_cast<size_t>(written));
  }
}

RankOutput::RankOutput(int rank, int echoFd, const std::string& logPath)
    : prefix_("[rank " + std::to_string(rank) + "] "), echoFd_(echoFd) {
  if (logPath.empty()) return;
  log_.reset(::open(logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!log_.valid()) throw std::system_error(errno, std::generic_category(), "cannot create " + logPath);
}

void RankOutput::append(std::string_view bytes) {
  if (log_.valid()) writeAll(log_.get(), bytes);
  pending_.append(bytes);
  size_t begin = 0;
  for (size_t newline; (newline = pending_.find('\n', begin)) != std::string::npos;
       begin = newline + 1) {
    emitLine(std::string_view(pending_).substr(begin, newline - begin));
  }
  pending_.erase(0, begin);
  if (pending_.size() >= kMaxPendingBytes) {
    emitLine(pending_);
    pending_.clear();
  }
}

void RankOutput::finish() {
  if (!pending_.empty()) emitLine(pending_);
  pending_.clear();
}

void RankOutput::emitLine(std::string_view line) {
  std::string prefixed;
  prefixed.reserve(prefix_.size() + line.size() + 1);
  prefixed.append(prefix_).append(line).push_back('\n');
  writeAll(echoFd_, prefixed);
}

}  // namespace nccl_moe::launcher
