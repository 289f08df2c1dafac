// The --version text every tool prints (tools/common/version.h).
#include <gtest/gtest.h>

#include "tools/common/version.h"

namespace nccl_moe::tools {
namespace {

TEST(ToolVersion, NcclCodesOfBothForms) {
  EXPECT_EQ(ncclVersionText(22809), "2.28.9");  // NCCL_VERSION(2, 28, 9) since 2.9
  EXPECT_EQ(ncclVersionText(21003), "2.10.3");
  EXPECT_EQ(ncclVersionText(2708), "2.7.8");  // before 2.9: X * 1000 + Y * 100 + Z
  EXPECT_EQ(ncclVersionText(0), "unknown");   // ncclGetVersion failed
  EXPECT_EQ(ncclVersionText(-1), "unknown");
}

TEST(ToolVersion, LibraryThenNccl) {
  EXPECT_EQ(toolVersion(100, 22809), "0.1.0 (NCCL 2.28.9)");
  EXPECT_EQ(toolVersion(10203, 0), "1.2.3 (NCCL unknown)");
  EXPECT_EQ(toolVersion(100, 22809, "headers"), "0.1.0 (NCCL 2.28.9, headers)");
}

}  // namespace
}  // namespace nccl_moe::tools
