// A TCP port on 127.0.0.1 that nobody listened on a moment ago (for MASTER_PORT).
#pragma once

#include <string>
#include <utility>

namespace nccl_moe::launcher {

// The kernel's ephemeral range ("low high", as in /proc/sys/net/ipv4/ip_local_port_range); a text
// that does not parse gives Linux's default, 32768-60999.
std::pair<int, int> parseEphemeralRange(const std::string& text);

// A free port below the ephemeral range when one is found: a port the kernel picks itself is
// ephemeral, and between this check and the rank program's listen an outgoing connection (NCCL's
// own sockets, say) may be given the same port (EADDRINUSE in torch's store). Falls back to a
// port the kernel picks.
int findFreePort();  // throws std::system_error

}  // namespace nccl_moe::launcher
