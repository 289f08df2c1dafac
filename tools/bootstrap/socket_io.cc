#include "tools/bootstrap/socket_io.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "nccl_moe_bootstrap.h"

namespace nccl_moe::bootstrap {
namespace {

constexpr int kBacklog = 1024;  // every rank of a large job may knock at once

void makeNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Waits until `fd` has `events` or the deadline passes; false on the deadline.
bool waitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd entry{fd, events, 0};
    const int ready = ::poll(&entry, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return true;  // let the following call report the error
  }
}

// An invalid fd with *error = errno when the socket cannot be made, bound or listened on.
UniqueFd listenSocket(int family, int port, int* error) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    *error = errno;
    return fd;
  }
  const int on = 1, off = 0;
  // A restarted job may reuse the port while the last one's connections sit in TIME_WAIT.
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  int result;
  if (family == AF_INET6) {
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_addr = in6addr_any;
    address.sin6_port = htons(static_cast<uint16_t>(port));
    result = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address);
  } else {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    address.sin_port = htons(static_cast<uint16_t>(port));
    result = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address);
  }
  if (result != 0 || ::listen(fd.get(), kBacklog) != 0) {
    *error = errno;
    fd.reset();
  }
  return fd;
}

}  // namespace

UniqueFd listenOn(int port) {
  int error = 0;
  UniqueFd fd = listenSocket(AF_INET6, port, &error);
  if (!fd.valid() && error != EADDRINUSE) fd = listenSocket(AF_INET, port, &error);  // no IPv6 here
  if (!fd.valid()) {
    std::string message = "rank 0 cannot listen on TCP port " + std::to_string(port) + ": " + std::strerror(error);
    if (error == EADDRINUSE) message += " (another job or program holds it; set NCCL_MOE_BOOTSTRAP_PORT to a free port)";
    throw BootstrapError(message);
  }
  makeNonBlocking(fd.get());
  return fd;
}

int localPort(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return -1;
  if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

UniqueFd acceptUntil(int listener, Clock::time_point deadline) {
  while (waitFor(listener, POLLIN, deadline)) {
    UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (fd.valid()) return fd;
    // EAGAIN: the knocker left again; EINTR, ECONNABORTED: try again. Others: nothing to wait for.
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) break;
  }
  return UniqueFd();
}

UniqueFd connectOnce(const std::string& host, int port, Clock::time_point deadline, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int resolved = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (resolved != 0) {
    *error = "cannot resolve '" + host + "': " + ::gai_strerror(resolved);
    return UniqueFd();
  }
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  *error = "no address";
  for (const addrinfo* address = found; address != nullptr; address = address->ai_next) {
    UniqueFd fd(::socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC, address->ai_protocol));
    if (!fd.valid()) {
      *error = std::strerror(errno);
      continue;
    }
    makeNonBlocking(fd.get());
    if (::connect(fd.get(), address->ai_addr, address->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        *error = std::strerror(errno);
        continue;
      }
      if (!waitFor(fd.get(), POLLOUT, deadline)) {
        *error = "no answer to the connection request";
        continue;
      }
      int failure = 0;
      socklen_t length = sizeof failure;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &failure, &length);
      if (failure != 0) {
        *error = std::strerror(failure);
        continue;
      }
    }
    const int on = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    return fd;
  }
  return UniqueFd();
}

IoResult sendAll(int fd, const uint8_t* data, size_t size, Clock::time_point deadline) {
  size_t sent = 0;
  while (sent < size) {
    const ssize_t written = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (written > 0) {
      sent += static_cast<size_t>(written);
    } else if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (!waitFor(fd, POLLOUT, deadline)) return IoResult::kTimedOut;
    } else {
      return errno == EPIPE || errno == ECONNRESET ? IoResult::kClosed : IoResult::kFailed;
    }
  }
  return IoResult::kDone;
}

IoResult receiveAll(int fd, uint8_t* data, size_t size, Clock::time_point deadline) {
  size_t received = 0;
  while (received < size) {
    const ssize_t read = ::recv(fd, data + received, size - received, 0);
    if (read > 0) {
      received += static_cast<size_t>(read);
    } else if (read == 0) {
      return IoResult::kClosed;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      if (!waitFor(fd, POLLIN, deadline)) return IoResult::kTimedOut;
    } else {
      return errno == ECONNRESET ? IoResult::kClosed : IoResult::kFailed;
    }
  }
  return IoResult::kDone;
}

}  // namespace nccl_moe::bootstrap
