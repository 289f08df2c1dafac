// The TCP id store: rank 0 serves the id to ranks in other processes, refuses ranks of another
// job, drops connections that are no rank, and every wait ends with a message, never a hang.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "fake_environment.h"
#include "tools/bootstrap/socket_io.h"
#include "tools/bootstrap/store_wire.h"
#include "tools/bootstrap/tcp_store.h"

namespace nccl_moe::bootstrap {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kPatience{20000};  // for waits that must succeed

ncclUniqueId sampleId(int seed) {
  ncclUniqueId id{};
  for (size_t i = 0; i < sizeof(id.internal); ++i) id.internal[i] = static_cast<char>(i * 31 + seed);
  return id;
}

bool sameId(const ncclUniqueId& a, const ncclUniqueId& b) {
  return std::string(a.internal, sizeof(a.internal)) == std::string(b.internal, sizeof(b.internal));
}

// A port nobody listens on (bound to 0, then released).
int freePort() {
  const UniqueFd fd = listenOn(0);
  return localPort(fd.get());
}

// Runs `body` in a child process; its return value is the exit code (exceptions: 99).
pid_t forkRank(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
    }
    ::_exit(code);
  }
  return pid;
}

int exitCodeOf(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The id store's rank 0 in a thread; `error` holds what serve() threw ("" when all were served).
class ServerThread {
 public:
  ServerThread(const StoreJob& job, milliseconds timeout) : server_(0, job) {
    thread_ = std::thread([this, timeout] {
      try {
        server_.serve(sampleId(1), timeout);
      } catch (const BootstrapError& e) {
        error_ = e.what();
      }
    });
  }
  ~ServerThread() { join(); }
  int port() const { return server_.port(); }
  const std::string& join() {
    if (thread_.joinable()) thread_.join();
    return error_;
  }

 private:
  UniqueIdServer server_;
  std::string error_;
  std::thread thread_;
};

// A listener that is not an id store: each connection gets `answer` (nothing when empty) and is
// then held open until the test ends.
class FakeServer {
 public:
  explicit FakeServer(std::string answer) : listener_(listenOn(0)), answer_(std::move(answer)) {
    thread_ = std::thread([this] {
      connection_ = acceptUntil(listener_.get(), Clock::now() + kPatience);
      if (connection_.valid() && !answer_.empty()) {
        sendAll(connection_.get(), reinterpret_cast<const uint8_t*>(answer_.data()), answer_.size(),
                Clock::now() + kPatience);
      }
    });
  }
  ~FakeServer() { thread_.join(); }
  int port() const { return localPort(listener_.get()); }

 private:
  UniqueFd listener_;
  UniqueFd connection_;
  std::string answer_;
  std::thread thread_;
};

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

TEST(BootstrapTcpStore, DistributesTheIdToRanksInOtherProcesses) {
  constexpr int kRanks = 6;
  const StoreJob job{kRanks, "SLURM_JOB_ID=7;"};
  UniqueIdServer server(0, job);
  const int port = server.port();
  std::vector<pid_t> ranks;
  for (int rank = 1; rank < kRanks; ++rank) {
    ranks.push_back(forkRank([&, rank] {
      const std::string host = rank % 2 ? "127.0.0.1" : "localhost";  // by name too (IPv6 or IPv4)
      return sameId(fetchUniqueId(host, port, job, rank, kPatience), sampleId(1)) ? 0 : 1;
    }));
  }
  server.serve(sampleId(1), kPatience);
  for (size_t i = 0; i < ranks.size(); ++i) EXPECT_EQ(exitCodeOf(ranks[i]), 0) << "rank " << i + 1;
}

TEST(BootstrapTcpStore, RanksThatStartBeforeRankZeroKeepTrying) {
  const int port = freePort();
  const StoreJob job{3, ""};
  std::vector<pid_t> ranks;
  for (int rank = 1; rank < 3; ++rank) {
    ranks.push_back(forkRank([&, rank] {
      return sameId(fetchUniqueId("127.0.0.1", port, job, rank, kPatience), sampleId(1)) ? 0 : 1;
    }));
  }
  std::this_thread::sleep_for(milliseconds(400));  // the ranks meet a closed port for a while
  UniqueIdServer server(port, job);
  server.serve(sampleId(1), kPatience);
  for (pid_t rank : ranks) EXPECT_EQ(exitCodeOf(rank), 0);
}

TEST(BootstrapTcpStore, AConnectionThatIsNoRankGetsNothingAndTheRanksStillTheId) {
  const StoreJob job{2, ""};
  ServerThread server(job, kPatience);
  std::string problem;
  const UniqueFd probe = connectOnce("127.0.0.1", server.port(), Clock::now() + kPatience, &problem);
  ASSERT_TRUE(probe.valid()) << problem;
  const std::string garbage = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";  // wrong magic: an HTTP probe
  ASSERT_EQ(sendAll(probe.get(), reinterpret_cast<const uint8_t*>(garbage.data()), garbage.size(),
                    Clock::now() + kPatience),
            IoResult::kDone);
  std::array<uint8_t, 1> byte{};
  EXPECT_EQ(receiveAll(probe.get(), byte.data(), 1, Clock::now() + kPatience), IoResult::kClosed);
  EXPECT_TRUE(sameId(fetchUniqueId("127.0.0.1", server.port(), job, 1, kPatience), sampleId(1)));
  EXPECT_EQ(server.join(), "");
}

TEST(BootstrapTcpStore, ARankOfAnotherSizeIsRefusedOnBothSides) {
  ServerThread server(StoreJob{4, ""}, milliseconds(1500));
  const int port = server.port();
  EXPECT_EQ(bootstrapErrorOf([&] { fetchUniqueId("127.0.0.1", port, StoreJob{3, ""}, 1, kPatience); }),
            "rank 1: rank 0 at 127.0.0.1:" + std::to_string(port) +
                " is not this job's rank 0: it is rank 0 of a job of 4 ranks, this rank's job has 3 (another job "
                "on the same address and port?)");
  EXPECT_EQ(server.join(), "rank 0: 3 of 3 other ranks did not ask for the unique id on port " +
                               std::to_string(port) +
                               " within 1.5 s (ranks 1, 2, 3); 1 hello(s) of another job were refused. Did every "
                               "rank start, and do all see the same address and port?");
}

TEST(BootstrapTcpStore, ARankOfAnotherLauncherJobIsRefused) {
  ServerThread server(StoreJob{2, "SLURM_JOB_ID=1;"}, milliseconds(1000));
  const std::string error = bootstrapErrorOf(
      [&] { fetchUniqueId("127.0.0.1", server.port(), StoreJob{2, "SLURM_JOB_ID=2;"}, 1, kPatience); });
  EXPECT_NE(error.find("it belongs to another launcher job"), std::string::npos) << error;
  EXPECT_NE(server.join().find("1 hello(s) of another job were refused"), std::string::npos);
}

TEST(BootstrapTcpStore, ARankOutOfRangeIsRefused) {
  ServerThread server(StoreJob{2, ""}, milliseconds(1000));
  const std::string error =
      bootstrapErrorOf([&] { fetchUniqueId("127.0.0.1", server.port(), StoreJob{2, ""}, 5, kPatience); });
  EXPECT_NE(error.find("it refused rank 5"), std::string::npos) << error;
  server.join();
}

TEST(BootstrapTcpStore, SomethingElseOnThePortIsNotTakenForRankZero) {
  FakeServer other(std::string(kReplyBytes, 'H'));
  const int port = other.port();
  EXPECT_EQ(bootstrapErrorOf([&] { fetchUniqueId("127.0.0.1", port, StoreJob{2, ""}, 1, kPatience); }),
            "rank 1: 127.0.0.1:" + std::to_string(port) +
                " answered, but not as an nccl-moe id store (another program on that port?)");
}

TEST(BootstrapTcpStore, ARankTimesOutCleanlyWhenRankZeroNeverComes) {
  const int port = freePort();
  const Clock::time_point start = Clock::now();
  const std::string error =
      bootstrapErrorOf([&] { fetchUniqueId("127.0.0.1", port, StoreJob{2, ""}, 1, milliseconds(700)); });
  const double seconds = secondsSince(start);
  EXPECT_EQ(error, "rank 1: no unique id from rank 0 at 127.0.0.1:" + std::to_string(port) +
                       " within 0.7 s (last attempt: Connection refused). Is rank 0 running, and do all ranks "
                       "see the same address and port?");
  EXPECT_GE(seconds, 0.6);
  EXPECT_LT(seconds, 3.0);
}

TEST(BootstrapTcpStore, ARankTimesOutCleanlyWhenRankZeroNeverAnswers) {
  FakeServer silent("");
  const Clock::time_point start = Clock::now();
  const std::string error =
      bootstrapErrorOf([&] { fetchUniqueId("127.0.0.1", silent.port(), StoreJob{2, ""}, 1, milliseconds(800)); });
  EXPECT_NE(error.find("within 0.8 s (last attempt: connected, but no answer came)"), std::string::npos)
      << error;
  EXPECT_LT(secondsSince(start), 3.0);
}

TEST(BootstrapTcpStore, RankZeroTimesOutNamingTheRanksThatNeverCame) {
  const StoreJob job{4, ""};
  ServerThread server(job, milliseconds(1000));
  EXPECT_TRUE(sameId(fetchUniqueId("127.0.0.1", server.port(), job, 2, kPatience), sampleId(1)));
  EXPECT_EQ(server.join(), "rank 0: 2 of 3 other ranks did not ask for the unique id on port " +
                               std::to_string(server.port()) +
                               " within 1 s (ranks 1, 3). Did every rank start, and do all see the same address "
                               "and port?");
}

TEST(BootstrapTcpStore, ATakenPortIsAClearError) {
  const UniqueFd holder = listenOn(0);
  const int port = localPort(holder.get());
  EXPECT_EQ(bootstrapErrorOf([&] { const UniqueIdServer server(port, StoreJob{2, ""}); }),
            "rank 0 cannot listen on TCP port " + std::to_string(port) +
                ": Address already in use (another job or program holds it; set NCCL_MOE_BOOTSTRAP_PORT to a "
                "free port)");
}

TEST(BootstrapStoreWire, MessagesRoundTripAndForeignBytesAreNotOurs) {
  const Hello hello{kStoreVersion, 8, 5, jobHash("a")};
  const std::optional<Hello> back = decodeHello(encodeHello(hello));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->size, 8u);
  EXPECT_EQ(back->rank, 5u);
  EXPECT_EQ(back->job, jobHash("a"));
  EXPECT_NE(jobHash("a"), jobHash("b"));
  std::array<uint8_t, kHelloBytes> foreign{};
  foreign.fill('G');
  EXPECT_FALSE(decodeHello(foreign));
  Reply reply;
  reply.verdict = Verdict::kOtherJob;
  reply.size = 3;
  reply.id = sampleId(4);
  const std::optional<Reply> answer = decodeReply(encodeReply(reply));
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->verdict, Verdict::kOtherJob);
  EXPECT_EQ(answer->size, 3u);
  EXPECT_TRUE(sameId(answer->id, sampleId(4)));
}

}  // namespace
}  // namespace nccl_moe::bootstrap
