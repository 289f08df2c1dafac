#include <gtest/gtest.h>

#include <map>
#include <random>

#include "rank_env.h"
#include "unique_id_hex.h"

namespace nccl_moe {
namespace {

std::string sameBytes(const ncclUniqueId& id) { return std::string(id.internal, sizeof(id.internal)); }

TEST(LauncherUniqueIdHex, RoundTripsEveryByteValue) {
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

TEST(LauncherUniqueIdHex, AcceptsUppercase) {
  ncclUniqueId id{};
  id.internal[0] = static_cast<char>(0xab);
  std::string hex = encodeUniqueIdHex(id);
  hex[0] = 'A';
  hex[1] = 'B';
  EXPECT_EQ(sameBytes(decodeUniqueIdHex(hex)), sameBytes(id));
}

TEST(LauncherUniqueIdHex, RejectsWrongLengthAndNonHex) {
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

class LauncherReadRankEnv : public testing::Test {
 protected:
  std::map<std::string, std::string> variables_{{"NCCL_MOE_RANK", "5"},
                                                {"NCCL_MOE_NRANKS", "8"},
                                                {"NCCL_MOE_LOCAL_RANK", "1"},
                                                {"NCCL_MOE_DOMAIN_SIZE", "4"},
                                                {"NCCL_MOE_UNIQUE_ID", std::string(256, 'f')}};

  RankEnvironment read() const {
    return readRankEnvironment([this](const char* name) -> const char* {
      const auto found = variables_.find(name);
      return found == variables_.end() ? nullptr : found->second.c_str();
    });
  }

  std::string errorOf() const {
    try {
      read();
    } catch (const RankEnvironmentError& error) {
      return error.what();
    }
    return "no error";
  }
};

TEST_F(LauncherReadRankEnv, ReadsAConsistentEnvironment) {
  const RankEnvironment env = read();
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.nranks, 8);
  EXPECT_EQ(env.localRank, 1);
  EXPECT_EQ(env.domainSize, 4);
  EXPECT_EQ(env.domainIndex(), 1);
  EXPECT_EQ(env.domainCount(), 2);
  EXPECT_EQ(static_cast<unsigned char>(env.uniqueId.internal[0]), 0xff);
}

TEST_F(LauncherReadRankEnv, MissingVariableSaysHowToLaunch) {
  variables_.erase("NCCL_MOE_NRANKS");
  EXPECT_EQ(errorOf(),
            "NCCL_MOE_NRANKS is not set (start rank programs with nccl-moe-run -np N ...)");
}

TEST_F(LauncherReadRankEnv, MalformedNumbers) {
  variables_["NCCL_MOE_RANK"] = "five";
  EXPECT_EQ(errorOf(), "NCCL_MOE_RANK='five' is not an integer >= 0");
  variables_["NCCL_MOE_RANK"] = "5";
  variables_["NCCL_MOE_DOMAIN_SIZE"] = "0";
  EXPECT_EQ(errorOf(), "NCCL_MOE_DOMAIN_SIZE='0' is not an integer >= 1");
  variables_["NCCL_MOE_DOMAIN_SIZE"] = "99999999999";
  EXPECT_EQ(errorOf(), "NCCL_MOE_DOMAIN_SIZE='99999999999' is not an integer >= 1");
}

TEST_F(LauncherReadRankEnv, InconsistentValues) {
  variables_["NCCL_MOE_RANK"] = "8";
  EXPECT_EQ(errorOf(), "NCCL_MOE_RANK=8 is not below NCCL_MOE_NRANKS=8");
  variables_["NCCL_MOE_RANK"] = "5";
  variables_["NCCL_MOE_DOMAIN_SIZE"] = "3";
  EXPECT_EQ(errorOf(), "NCCL_MOE_NRANKS=8 is not a multiple of NCCL_MOE_DOMAIN_SIZE=3");
  variables_["NCCL_MOE_DOMAIN_SIZE"] = "4";
  variables_["NCCL_MOE_LOCAL_RANK"] = "2";
  EXPECT_EQ(errorOf(),
            "NCCL_MOE_LOCAL_RANK=2 does not match NCCL_MOE_RANK=5 modulo NCCL_MOE_DOMAIN_SIZE=4");
}

TEST_F(LauncherReadRankEnv, MalformedUniqueId) {
  variables_["NCCL_MOE_UNIQUE_ID"] = "xyz";
  EXPECT_EQ(errorOf(),
            "NCCL_MOE_UNIQUE_ID is malformed: an NCCL unique id in hex has 256 characters, this "
            "one has 3");
}

}  // namespace
}  // namespace nccl_moe
