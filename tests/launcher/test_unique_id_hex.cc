// The hex text form of an ncclUniqueId (NCCL_MOE_UNIQUE_ID).
#include <gtest/gtest.h>

#include <random>

#include "tools/bootstrap/unique_id_hex.h"

namespace nccl_moe {
namespace {

std::string sameBytes(const ncclUniqueId& id) { return std::string(id.internal, sizeof(id.internal)); }

TEST(BootstrapUniqueIdHex, RoundTripsEveryByteValue) {
  std::mt19937 random(7);
  for (int trial = 0; trial < 20; ++trial) {
    ncclUniqueId id{};
    for (char& byte : id.internal) byte = static_cast<char>(random() & 0xff);
    const std::string hex = encodeUniqueIdHex(id);
    EXPECT_EQ(hex.size(), 2 * sizeof(id.internal));
    EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_EQ(sameBytes(decodeUniqueIdHex(hex)), sameBytes(id));
  }
}

TEST(BootstrapUniqueIdHex, AcceptsUppercase) {
  ncclUniqueId id{};
  id.internal[0] = static_cast<char>(0xab);
  std::string hex = encodeUniqueIdHex(id);
  hex[0] = 'A';
  hex[1] = 'B';
  EXPECT_EQ(sameBytes(decodeUniqueIdHex(hex)), sameBytes(id));
}

TEST(BootstrapUniqueIdHex, RejectsWrongLengthAndNonHex) {
  try {
    decodeUniqueIdHex("abcd");
    FAIL() << "no error";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "an NCCL unique id in hex has 256 characters, this one has 4");
  }
  std::string hex(256, '0');
  hex[17] = 'g';
  try {
    decodeUniqueIdHex(hex);
    FAIL() << "no error";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "an NCCL unique id in hex has a non-hex character 'g' at position 17");
  }
}

}  // namespace
}  // namespace nccl_moe
