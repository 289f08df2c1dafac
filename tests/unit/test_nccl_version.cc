// The NCCL version check of ncclMoeCommCreate, as a function of the version numbers (no GPU, no
// communicator), and the minimum it enforces against the NCCL this build found.
#include <gtest/gtest.h>
#include <nccl.h>

#include <string>

#include "misc/nccl_version.h"

namespace nccl_moe::test {
namespace {

TEST(NcclVersion, DecodesBothCodeFormats) {
  // NCCL_VERSION(X, Y, Z): X * 10000 + Y * 100 + Z from 2.9 on, X * 1000 + Y * 100 + Z before.
  const NcclVersion modern = decodeNcclVersion(22809);
  EXPECT_EQ(modern.major, 2);
  EXPECT_EQ(modern.minor, 28);
  EXPECT_EQ(modern.patch, 9);
  const NcclVersion old = decodeNcclVersion(2804);
  EXPECT_EQ(old.major, 2);
  EXPECT_EQ(old.minor, 8);
  EXPECT_EQ(old.patch, 4);
  const NcclVersion first = decodeNcclVersion(20900);
  EXPECT_EQ(first.minor, 9);
  EXPECT_EQ(decodeNcclVersion(30001).major, 3);
}

TEST(NcclVersion, AcceptsTheMinimumAndNewer) {
  for (int code : {21800, 21801, 21806, 21903, 22809, 23007, 30000, 30102})
    EXPECT_TRUE(checkNcclVersion(code, NCCL_VERSION_CODE).isOk()) << code;
}

TEST(NcclVersion, RefusesOlderWithBothVersionsNamed) {
  for (int code : {21706, 21701, 21403, 21304, 2804, 2406, 0}) {
    const Status s = checkNcclVersion(code, 22809);
    EXPECT_EQ(s.code(), ncclInvalidUsage) << code;
    const NcclVersion v = decodeNcclVersion(code);
    const std::string loaded = std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.patch);
    EXPECT_NE(s.message().find("loaded in this process is " + loaded + ";"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("needs NCCL 2.18 or newer"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("built against nccl.h 2.28.9"), std::string::npos) << s.message();
  }
}

TEST(NcclVersion, ThisBuildsHeaderAndLibraryPass) {
  // CMake refused to configure against an older nccl.h; the libnccl.so.2 the tests load is the
  // one the build found.
  EXPECT_TRUE(checkNcclVersion(NCCL_VERSION_CODE, NCCL_VERSION_CODE).isOk());
  EXPECT_TRUE(checkLoadedNccl().isOk()) << checkLoadedNccl().message();
}

}  // namespace
}  // namespace nccl_moe::test
