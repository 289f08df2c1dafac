// spinForTag (misc/host_wait.h): the host's poll of a tag word a kernel stores into host memory
// (the layout's counts, core/handle.cc), here stored by another host thread.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "misc/host_wait.h"

namespace nccl_moe {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(SpinForTag, ReturnsAtOnceWhenTheTagIsThere) {
  volatile uint64_t tag = 7;
  EXPECT_TRUE(spinForTag(&tag, 7, microseconds(0)));
}

TEST(SpinForTag, SeesATagStoredLaterAndWhatWasStoredBeforeIt) {
  volatile uint64_t tag = 6;  // the previous layout's
  volatile int64_t counts[4] = {0, 0, 0, 0};
  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(2));
    for (int i = 0; i < 4; ++i) counts[i] = 100 + i;
    std::atomic_thread_fence(std::memory_order_release);
    tag = 7;
  });
  const auto start = std::chrono::steady_clock::now();
  const bool seen = spinForTag(&tag, 7, microseconds(5'000'000));
  const auto waited = std::chrono::steady_clock::now() - start;
  writer.join();
  ASSERT_TRUE(seen);
  EXPECT_GE(waited, milliseconds(1));  // it waited for the store, not for the limit
  EXPECT_LT(waited, milliseconds(4000));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(counts[i], 100 + i);
}

TEST(SpinForTag, GivesUpAfterTheLimitWhenTheTagNeverComes) {
  volatile uint64_t tag = 6;  // a layout that stopped before its counts (a fault, a timeout)
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(spinForTag(&tag, 7, microseconds(3000)));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, microseconds(3000));
  EXPECT_LT(waited, milliseconds(1000));
  tag = 8;  // a later tag is not the awaited one either
  EXPECT_FALSE(spinForTag(&tag, 7, microseconds(100)));
}

}  // namespace
}  // namespace nccl_moe
