#include "tools/bootstrap/tcp_store.h"

#include <algorithm>
#include <cstdio>
#include <thread>
#include <utility>
#include <vector>

#include "nccl_moe_bootstrap.h"
#include "tools/bootstrap/socket_io.h"
#include "tools/bootstrap/store_wire.h"

namespace nccl_moe::bootstrap {
namespace {

// How long one connection may take to say hello or to read its answer: a silent stray must not
// hold up the ranks queued behind it for the whole timeout.
constexpr std::chrono::seconds kExchangeLimit{5};
constexpr std::chrono::milliseconds kFirstRetry{50};
constexpr std::chrono::milliseconds kLongestRetry{1000};

Clock::time_point earlier(Clock::time_point a, Clock::time_point b) { return std::min(a, b); }

Verdict judge(const Hello& hello, const StoreJob& job) {
  if (hello.version != kStoreVersion) return Verdict::kOtherVersion;
  if (hello.size != static_cast<uint32_t>(job.size)) return Verdict::kOtherSize;
  if (hello.job != jobHash(job.name)) return Verdict::kOtherJob;
  if (hello.rank == 0 || hello.rank >= hello.size) return Verdict::kRankOutOfRange;
  return Verdict::kAccepted;
}

// "1, 4, 7" (at most `shown` of them, then "and N more").
std::string listOf(const std::vector<int>& ranks, size_t shown = 16) {
  std::string text;
  for (size_t i = 0; i < ranks.size() && i < shown; ++i) text += (i ? ", " : "") + std::to_string(ranks[i]);
  if (ranks.size() > shown) text += " and " + std::to_string(ranks.size() - shown) + " more";
  return text;
}

std::string refusalText(const Reply& reply, const StoreJob& job, int rank) {
  switch (reply.verdict) {
    case Verdict::kOtherVersion:
      return "it speaks store version " + std::to_string(reply.version) + ", this rank version " +
             std::to_string(kStoreVersion) + " (ranks of one job must run the same nccl-moe build)";
    case Verdict::kOtherSize:
      return "it is rank 0 of a job of " + std::to_string(reply.size) + " ranks, this rank's job has " +
             std::to_string(job.size) + " (another job on the same address and port?)";
    case Verdict::kOtherJob:
      return "it belongs to another launcher job (the job ids differ: another job on the same address and port?)";
    case Verdict::kRankOutOfRange:
      return "it refused rank " + std::to_string(rank);
    case Verdict::kAccepted:
      break;
  }
  return "it answered with an unknown verdict " + std::to_string(static_cast<int>(reply.verdict));
}

}  // namespace

std::string secondsText(std::chrono::milliseconds duration) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", duration.count() / 1000.0);
  return text;
}

UniqueIdServer::UniqueIdServer(int port, StoreJob job) : listener_(listenOn(port)), job_(std::move(job)) {
  port_ = localPort(listener_.get());
}

void UniqueIdServer::serve(const ncclUniqueId& id, std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  std::vector<bool> served(job_.size, false);
  served[0] = true;
  int waiting = job_.size - 1;
  int strays = 0, refused = 0;
  while (waiting > 0) {
    UniqueFd connection = acceptUntil(listener_.get(), deadline);
    if (!connection.valid()) break;
    const Clock::time_point limit = earlier(deadline, Clock::now() + kExchangeLimit);
    std::array<uint8_t, kHelloBytes> bytes{};
    std::optional<Hello> hello;
    if (receiveAll(connection.get(), bytes.data(), bytes.size(), limit) == IoResult::kDone) hello = decodeHello(bytes);
    if (!hello) {
      ++strays;  // not an nccl-moe rank (a port scan, a health check): it gets nothing
      continue;
    }
    Reply reply;
    reply.verdict = judge(*hello, job_);
    reply.size = static_cast<uint32_t>(job_.size);
    reply.job = jobHash(job_.name);
    if (reply.verdict == Verdict::kAccepted) reply.id = id;
    const std::array<uint8_t, kReplyBytes> answer = encodeReply(reply);
    const bool sent = sendAll(connection.get(), answer.data(), answer.size(), limit) == IoResult::kDone;
    if (reply.verdict != Verdict::kAccepted) {
      ++refused;
    } else if (sent && !served[hello->rank]) {
      served[hello->rank] = true;
      --waiting;
    }
  }
  if (waiting == 0) return;
  std::vector<int> missing;
  for (int rank = 1; rank < job_.size; ++rank) {
    if (!served[rank]) missing.push_back(rank);
  }
  std::string message = "rank 0: " + std::to_string(waiting) + " of " + std::to_string(job_.size - 1) +
                        " other ranks did not ask for the unique id on port " + std::to_string(port_) +
                        " within " + secondsText(timeout) + " (ranks " + listOf(missing) + ")";
  if (refused > 0) message += "; " + std::to_string(refused) + " hello(s) of another job were refused";
  if (strays > 0) message += "; " + std::to_string(strays) + " connection(s) that were no nccl-moe rank were dropped";
  throw BootstrapError(message + ". Did every rank start, and do all see the same address and port?");
}

ncclUniqueId fetchUniqueId(const std::string& host, int port, const StoreJob& job, int rank,
                           std::chrono::milliseconds timeout) {
  const std::string where = "rank 0 at " + host + ":" + std::to_string(port);
  const Clock::time_point deadline = Clock::now() + timeout;
  Hello hello;
  hello.size = static_cast<uint32_t>(job.size);
  hello.rank = static_cast<uint32_t>(rank);
  hello.job = jobHash(job.name);
  const std::array<uint8_t, kHelloBytes> greeting = encodeHello(hello);
  std::string lastProblem = "never tried";
  std::chrono::milliseconds pause = kFirstRetry;
  while (Clock::now() < deadline) {
    UniqueFd connection = connectOnce(host, port, deadline, &lastProblem);
    if (connection.valid()) {
      const Clock::time_point limit = earlier(deadline, Clock::now() + kExchangeLimit);
      std::array<uint8_t, kReplyBytes> bytes{};
      IoResult exchanged = sendAll(connection.get(), greeting.data(), greeting.size(), limit);
      if (exchanged == IoResult::kDone) exchanged = receiveAll(connection.get(), bytes.data(), bytes.size(), limit);
      if (exchanged == IoResult::kDone) {
        const std::optional<Reply> reply = decodeReply(bytes);
        if (!reply) {
          throw BootstrapError("rank " + std::to_string(rank) + ": " + host + ":" + std::to_string(port) +
                               " answered, but not as an nccl-moe id store (another program on that port?)");
        }
        if (reply->verdict != Verdict::kAccepted || reply->version != kStoreVersion) {
          throw BootstrapError("rank " + std::to_string(rank) + ": " + where + " is not this job's rank 0: " +
                               refusalText(*reply, job, rank));
        }
        return reply->id;
      }
      lastProblem = exchanged == IoResult::kTimedOut ? "connected, but no answer came"
                                                     : "the connection ended before an answer";
    }
    // Rank 0 may not listen yet: try again, less often as time goes on.
    std::this_thread::sleep_for(std::min<Clock::duration>(pause, std::max<Clock::duration>(deadline - Clock::now(), {})));
    pause = std::min(pause * 2, kLongestRetry);
  }
  throw BootstrapError("rank " + std::to_string(rank) + ": no unique id from " + where + " within " +
                       secondsText(timeout) + " (last attempt: " + lastProblem +
                       "). Is rank 0 running, and do all ranks see the same address and port?");
}

}  // namespace nccl_moe::bootstrap
