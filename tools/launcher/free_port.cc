#include "free_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <random>
#include <sstream>
#include <system_error>

#include "unique_fd.h"

namespace nccl_moe::launcher {
namespace {

// Binds 127.0.0.1:port (0: the kernel picks) and returns the port bound, or -1 if it is taken.
int bindLoopback(int port) {
  UniqueFd socketFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!socketFd.valid()) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(socketFd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    if (port != 0 && (errno == EADDRINUSE || errno == EACCES)) return -1;
    throw std::system_error(errno, std::generic_category(), "bind to 127.0.0.1:" + std::to_string(port));
  }
  socklen_t length = sizeof(address);
  if (::getsockname(socketFd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::system_error(errno, std::generic_category(), "getsockname");
  }
  return ntohs(address.sin_port);
}

}  // namespace

std::pair<int, int> parseEphemeralRange(const std::string& text) {
  std::istringstream in(text);
  int low = 0, high = 0;
  if (in >> low >> high && 1024 < low && low <= high && high <= 65535) return {low, high};
  return {32768, 60999};
}

int findFreePort() {
  std::ifstream file("/proc/sys/net/ipv4/ip_local_port_range");
  std::stringstream text;
  text << file.rdbuf();
  const int low = parseEphemeralRange(text.str()).first;
  // A window of up to 10000 ports just below the ephemeral range (never the privileged ones).
  const int first = std::max(1025, low - 10000);
  if (first < low) {
    std::mt19937 rng(std::random_device{}());
    std::uniform_int_distribution<int> pick(first, low - 1);
    for (int attempt = 0; attempt < 64; ++attempt)
      if (const int port = bindLoopback(pick(rng)); port > 0) return port;
  }
  return bindLoopback(0);
}

}  // namespace nccl_moe::launcher
