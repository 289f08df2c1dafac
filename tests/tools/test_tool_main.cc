// runToolMain: what escapes a tool's body becomes exit status 2 (usage) or 1 (anything else),
// with one "<program>: <message>" line on stderr.
#include <gtest/gtest.h>

#include <functional>
#include <new>
#include <stdexcept>
#include <string>

#include "tools/common/flags.h"
#include "tools/common/tool_main.h"

namespace nccl_moe::tools {
namespace {

struct MainResult {
  int status = -1;
  std::string err;
};

MainResult runCapturingStderr(const std::function<int()>& body, const std::string& memoryHint = "") {
  testing::internal::CaptureStderr();
  MainResult result;
  result.status = runToolMain("nccl-moe-x", body, memoryHint);
  result.err = testing::internal::GetCapturedStderr();
  return result;
}

TEST(ToolMain, ReturnsTheBodysStatus) {
  const MainResult result = runCapturingStderr([] { return 3; });
  EXPECT_EQ(result.status, 3);
  EXPECT_EQ(result.err, "");
}

TEST(ToolMain, UsageErrorExitsWith2) {
  const MainResult result = runCapturingStderr([]() -> int { throw UsageError("-b: '0' is out of range"); });
  EXPECT_EQ(result.status, kExitUsage);
  EXPECT_EQ(result.err, "nccl-moe-x: -b: '0' is out of range\n");
}

TEST(ToolMain, OutOfMemoryExitsWith1AndTheHint) {
  const MainResult result =
      runCapturingStderr([]() -> int { throw std::bad_alloc(); }, "lower --tokens or --hidden");
  EXPECT_EQ(result.status, kExitFailure);
  EXPECT_EQ(result.err, "nccl-moe-x: out of host memory (an allocation failed); lower --tokens or --hidden\n");
}

TEST(ToolMain, OtherFailureExitsWith1) {
  const MainResult result = runCapturingStderr([]() -> int { throw std::runtime_error("cannot write 'x': EIO"); });
  EXPECT_EQ(result.status, kExitFailure);
  EXPECT_EQ(result.err, "nccl-moe-x: cannot write 'x': EIO\n");
}

}  // namespace
}  // namespace nccl_moe::tools
