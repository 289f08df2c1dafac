// poll() until something is ready or a deadline passes; the launcher's only way of waiting.
#pragma once

#include <poll.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace nccl_moe::launcher {

using Clock = std::chrono::steady_clock;

Clock::time_point deadlineAfter(double seconds);

// Returns the number of ready entries (0 when the deadline passed). No deadline: waits until an
// entry is ready. Interrupted by a signal: returns 0 early; callers re-check their state.
int pollUntil(std::vector<pollfd>& entries, std::optional<Clock::time_point> deadline);

// Reads what `fd` has now (non-blocking fd). Returns false at end of file or on an error.
bool readAvailable(int fd, std::string& into);

}  // namespace nccl_moe::launcher
