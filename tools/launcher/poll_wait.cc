#include "poll_wait.h"

#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace nccl_moe::launcher {
namespace {

constexpr size_t kMaxBytesPerRead = 1 << 20;

}  // namespace

Clock::time_point deadlineAfter(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

int pollUntil(std::vector<pollfd>& entries, std::optional<Clock::time_point> deadline) {
  int timeoutMs = -1;
  if (deadline) {
    const auto left = *deadline - Clock::now();
    // Rounded up: waking a little early would spin until the deadline.
    const auto leftMs = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    timeoutMs = leftMs <= 0 ? 0 : static_cast<int>(std::min<long long>(leftMs, 1 << 30));
  }
  const int ready = ::poll(entries.data(), entries.size(), timeoutMs);
  if (ready < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");
  return ready < 0 ? 0 : ready;
}

bool readAvailable(int fd, std::string& into) {
  char buffer[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got > 0) {
      into.append(buffer, static_cast<size_t>(got));
      if (into.size() >= kMaxBytesPerRead) return true;  // let other ranks have a turn
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

}  // namespace nccl_moe::launcher
