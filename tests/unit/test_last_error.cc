// ncclMoeGetLastError's communicator message: written by any thread, read as a stable copy.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "misc/last_error.h"

namespace nccl_moe::test {
namespace {

TEST(LastError, EmptyMessageGivesNoCopy) {
  SharedErrorMessage message;
  EXPECT_EQ(lastErrorCopy(message), nullptr);
  message.set("ncclMoeDispatch: bad");
  ASSERT_NE(lastErrorCopy(message), nullptr);
  EXPECT_STREQ(lastErrorCopy(message), "ncclMoeDispatch: bad");
}

// A reader's text stays whole and unchanged while other threads keep failing on the same
// communicator (the watchdog's async-error query, calls on other threads). Before, the reader
// got the c_str() of a std::string other threads reassigned: torn, changed or freed under it.
TEST(LastError, ReadersGetStableCopiesWhileWritersFail) {
  SharedErrorMessage message;
  message.set(std::string(200, 'a'));
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      // Different lengths force reallocation of the shared string on every write.
      const std::string texts[] = {std::string(200, 'a'), std::string(3000, 'b' + w)};
      for (int i = 0; !stop.load(); ++i) message.set("ncclMoeCommGetAsyncError: " + texts[i % 2]);
    });
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  for (int i = 0; i < 2000 || std::chrono::steady_clock::now() < until; ++i) {
    const char* text = lastErrorCopy(message);
    ASSERT_NE(text, nullptr);
    const std::string first(text);
    // Every message is one writer's whole text: a single letter repeated after the call name.
    const std::string body = first.substr(first.find(": ") == std::string::npos ? 0 : first.find(": ") + 2);
    ASSERT_FALSE(body.empty());
    ASSERT_EQ(body.find_first_not_of(body[0]), std::string::npos) << "torn message";
    std::this_thread::yield();
    ASSERT_EQ(std::string(text), first) << "the text changed under the reader";
  }
  stop = true;
  for (std::thread& writer : writers) writer.join();
}

}  // namespace
}  // namespace nccl_moe::test
