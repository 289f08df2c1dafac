// MASTER_PORT selection (tools/launcher/free_port): below the kernel's ephemeral range, so that an
// outgoing connection cannot be handed the port before the rank program listens on it.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "free_port.h"

namespace nccl_moe::launcher {
namespace {

TEST(FreePort, ParsesTheKernelsRangeFile) {
  EXPECT_EQ(parseEphemeralRange("32768\t60999\n"), std::make_pair(32768, 60999));
  EXPECT_EQ(parseEphemeralRange("40000 50000"), std::make_pair(40000, 50000));
}

TEST(FreePort, UnreadableRangeGivesLinuxDefault) {
  for (const char* text : {"", "garbage", "5000", "60000 50000", "80 90", "1000 70000"})
    EXPECT_EQ(parseEphemeralRange(text), std::make_pair(32768, 60999)) << "'" << text << "'";
}

TEST(FreePort, PortIsBelowTheEphemeralRangeAndFree) {
  std::ifstream file("/proc/sys/net/ipv4/ip_local_port_range");
  std::stringstream text;
  text << file.rdbuf();
  const auto [low, high] = parseEphemeralRange(text.str());
  for (int i = 0; i < 8; ++i) {
    const int port = findFreePort();
    if (low > 1025) {
      EXPECT_GE(port, std::max(1025, low - 10000));
      EXPECT_LT(port, low);
    }
    // Free: a listener can take it now.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0) << port;
    ::close(fd);
  }
}

}  // namespace
}  // namespace nccl_moe::launcher
