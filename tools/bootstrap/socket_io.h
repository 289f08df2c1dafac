// TCP for the id store: every call that waits takes a deadline, so nothing here blocks forever.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "tools/bootstrap/unique_fd.h"

namespace nccl_moe::bootstrap {

using Clock = std::chrono::steady_clock;

// A listening socket on every interface (IPv6 with IPv4 mapped, else IPv4 alone); port 0 takes a
// free one (see localPort). Throws BootstrapError saying why the port cannot be had.
UniqueFd listenOn(int port);
int localPort(int fd);

// Waits for one connection until `deadline`; an invalid fd when none came.
UniqueFd acceptUntil(int listener, Clock::time_point deadline);

// One attempt to connect to host:port within `deadline`; on failure an invalid fd, and `error`
// says why ("Connection refused", a name that does not resolve, ...).
UniqueFd connectOnce(const std::string& host, int port, Clock::time_point deadline, std::string* error);

enum class IoResult { kDone, kClosed, kTimedOut, kFailed };

IoResult sendAll(int fd, const uint8_t* data, size_t size, Clock::time_point deadline);
IoResult receiveAll(int fd, uint8_t* data, size_t size, Clock::time_point deadline);

}  // namespace nccl_moe::bootstrap
