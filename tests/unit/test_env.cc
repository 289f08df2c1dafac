// NCCL_MOE_* integer variables: a value that is ignored is said, once, even without NCCL_MOE_DEBUG.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "misc/env.h"

namespace nccl_moe::test {
namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(Env, IgnoredValueWarnsOnceByDefault) {
  ASSERT_EQ(std::getenv("NCCL_MOE_DEBUG"), nullptr) << "this test checks the default level";
  setenv("NCCL_MOE_TIMEOUT_MS", "5s", 1);
  testing::internal::CaptureStderr();
  bool rejected = false;
  EXPECT_EQ(envInt("NCCL_MOE_TIMEOUT_MS", EnvDefaults::kTimeoutMs, 1, 1 << 30, &rejected), EnvDefaults::kTimeoutMs);
  EXPECT_TRUE(rejected);
  EXPECT_EQ(envTimeoutMs(), EnvDefaults::kTimeoutMs);  // read on every call: warned about once
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(said, "NCCL_MOE_TIMEOUT_MS=\"5s\""), 1) << said;
  EXPECT_NE(said.find("WARN"), std::string::npos) << said;

  setenv("NCCL_MOE_TIMEOUT_MS", "2500", 1);
  testing::internal::CaptureStderr();
  EXPECT_EQ(envInt("NCCL_MOE_TIMEOUT_MS", EnvDefaults::kTimeoutMs, 1, 1 << 30, &rejected), 2500);
  EXPECT_FALSE(rejected);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");

  // Another bad value of the same variable is a new mistake: said once more.
  setenv("NCCL_MOE_TIMEOUT_MS", "-1", 1);
  testing::internal::CaptureStderr();
  EXPECT_EQ(envTimeoutMs(), EnvDefaults::kTimeoutMs);
  EXPECT_EQ(count(testing::internal::GetCapturedStderr(), "NCCL_MOE_TIMEOUT_MS=\"-1\""), 1);
  unsetenv("NCCL_MOE_TIMEOUT_MS");
}

}  // namespace
}  // namespace nccl_moe::test
