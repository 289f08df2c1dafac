// runBounded (misc/host_wait.h): the bound on a call that may block inside NCCL.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "misc/host_wait.h"

namespace nccl_moe {
namespace {

TEST(RunBounded, ReturnsTheWorksStatusWhenItFinishesInTime) {
  EXPECT_TRUE(runBounded(2000, "quick work", [] { return Status::ok(); }).isOk());
  const Status failed = runBounded(2000, "failing work", [] { return Status::invalidArgument("bad input"); });
  EXPECT_EQ(failed.code(), ncclInvalidArgument);
  EXPECT_EQ(failed.message(), "bad input");
}

TEST(RunBounded, GivesUpOnBlockedWorkAfterTheTimeoutAndLeavesItRunning) {
  auto release = std::make_shared<std::atomic<bool>>(false);
  auto finished = std::make_shared<std::atomic<bool>>(false);
  const auto start = std::chrono::steady_clock::now();
  const Status status = runBounded(200, "the stuck exchange", [release, finished] {
    while (!release->load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    finished->store(true);
    return Status::ok();
  });
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(status.code(), ncclRemoteError);
  EXPECT_NE(status.message().find("the stuck exchange timed out after 200 ms"), std::string::npos) << status.message();
  EXPECT_GE(waited, std::chrono::milliseconds(200));
  EXPECT_LT(waited, std::chrono::milliseconds(2000));
  EXPECT_FALSE(finished->load());
  // The abandoned work still ends once unblocked (it owns what it touches).
  release->store(true);
  for (int i = 0; i < 400 && !finished->load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(finished->load());
}

}  // namespace
}  // namespace nccl_moe
