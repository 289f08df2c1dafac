#include "supervisor.h"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "poll_wait.h"
#include "rank_output.h"

namespace nccl_moe::launcher {
namespace {

// After SIGKILL a process normally vanishes at once; one stuck in the kernel (a hung GPU driver
// call) may never, and the launcher must still end.
constexpr double kReapAfterKillSeconds = 5;

struct Rank {
  ChildProcess process;
  RankOutput output;
  Clock::time_point started;
  RankResult result;
};

std::string formatSeconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", seconds);
  return text;
}

std::string listOfRanks(const std::vector<int>& ranks) {
  std::string text;
  for (int rank : ranks) text += (text.empty() ? "" : ", ") + std::to_string(rank);
  return text;
}

class Supervision {
 public:
  Supervision(const SupervisorSettings& settings, SignalPipe& signals)
      : settings_(settings), signals_(signals) {}

  void start(const std::vector<ChildSpec>& specs) {
    if (settings_.outputDir) std::filesystem::create_directories(*settings_.outputDir);
    for (size_t index = 0; index < specs.size(); ++index) {
      const int rank = static_cast<int>(index);
      const std::string logPath =
          settings_.outputDir ? *settings_.outputDir + "/rank-" + std::to_string(rank) + ".log" : "";
      RankOutput output(rank, settings_.echoFd, logPath);
      ChildProcess process = [&] {
        try {
          return ChildProcess::spawn(specs[index]);
        } catch (const SpawnError& error) {
          throw SpawnError("rank " + std::to_string(rank) + ": " + error.what());
        }
      }();
      if (process.output().valid()) setNonBlocking(process.output().get());
      ranks_.push_back(std::make_unique<Rank>(
          Rank{std::move(process), std::move(output), Clock::now(), RankResult{rank, {}, 0, ""}}));
    }
    if (settings_.timeoutSeconds) timeoutAt_ = deadlineAfter(*settings_.timeoutSeconds);
  }

  JobResult run() {
    while (anyRunning()) {
      applyDeadlinesAndSignals();
      if (gaveUp_) break;
      waitForEvents();
      reapEnded();
    }
    JobResult job;
    job.reason = reason_;
    job.firstFailedRank = firstFailedRank_;
    job.stopSignal = stopSignal_;
    job.runningAtTimeout = runningAtTimeout_;
    for (auto& rank : ranks_) {
      if (rank->process.running()) rank->result.wallSeconds = secondsSince(rank->started);
      job.ranks.push_back(rank->result);
    }
    return job;
  }

 private:
  static double secondsSince(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  bool anyRunning() const {
    for (const auto& rank : ranks_) {
      if (rank->process.running()) return true;
    }
    return false;
  }

  std::vector<int> runningRanks() const {
    std::vector<int> running;
    for (const auto& rank : ranks_) {
      if (rank->process.running()) running.push_back(rank->result.rank);
    }
    return running;
  }

  void message(const std::string& text) const {
    writeAll(settings_.messageFd, "nccl-moe-run: " + text + "\n");
  }

  void applyDeadlinesAndSignals() {
    const Clock::time_point now = Clock::now();
    if (signals_.stopSignal() != 0 && reason_ != StopReason::kInterrupted && !stopping_) {
      stopSignal_ = signals_.stopSignal();
      reason_ = StopReason::kInterrupted;
      message(std::string("got ") + (stopSignal_ == SIGINT ? "SIGINT" : "SIGTERM") +
              "; stopping ranks " + listOfRanks(runningRanks()));
      beginStopping("launcher interrupted");
    }
    if (timeoutAt_ && now >= *timeoutAt_ && !stopping_) {
      reason_ = StopReason::kTimeout;
      runningAtTimeout_ = runningRanks();
      message("timeout after " + formatSeconds(*settings_.timeoutSeconds) +
              " s; ranks still running: " + listOfRanks(runningAtTimeout_));
      beginStopping("stopped: timeout");
    }
    if (failStopAt_ && now >= *failStopAt_ && !stopping_) {
      message("fail grace of " + formatSeconds(settings_.failGraceSeconds) +
              " s over; stopping ranks " + listOfRanks(runningRanks()));
      beginStopping("stopped: rank " + std::to_string(firstFailedRank_) + " failed");
    }
    if (killAt_ && now >= *killAt_) {
      killAt_.reset();
      const std::vector<int> stubborn = runningRanks();
      if (!stubborn.empty()) {
        message("ranks " + listOfRanks(stubborn) + " ignored SIGTERM; sending SIGKILL");
        for (auto& rank : ranks_) {
          if (rank->process.running()) rank->result.note += " (SIGKILL)";
          rank->process.signalGroup(SIGKILL);
        }
      }
      giveUpAt_ = deadlineAfter(kReapAfterKillSeconds);
    }
    if (giveUpAt_ && now >= *giveUpAt_ && anyRunning()) {
      message("ranks " + listOfRanks(runningRanks()) + " did not end after SIGKILL; giving up");
      gaveUp_ = true;
    }
  }

  void beginStopping(const std::string& note) {
    stopping_ = true;
    failStopAt_.reset();
    for (auto& rank : ranks_) {
      if (!rank->process.running()) continue;
      rank->result.note = note;
      rank->process.signalGroup(SIGTERM);
    }
    killAt_ = deadlineAfter(settings_.killGraceSeconds);
  }

  std::optional<Clock::time_point> nextDeadline() const {
    std::optional<Clock::time_point> next;
    for (const auto& deadline : {stopping_ ? std::nullopt : timeoutAt_, failStopAt_, killAt_, giveUpAt_}) {
      if (deadline && (!next || *deadline < *next)) next = deadline;
    }
    return next;
  }

  void waitForEvents() {
    std::vector<pollfd> entries{{signals_.fd(), POLLIN, 0}};
    std::vector<Rank*> owners{nullptr};
    for (auto& rank : ranks_) {
      if (!rank->process.output().valid()) continue;
      entries.push_back({rank->process.output().get(), POLLIN, 0});
      owners.push_back(rank.get());
    }
    if (pollUntil(entries, nextDeadline()) == 0) return;
    if (entries[0].revents != 0) signals_.drain();
    for (size_t i = 1; i < entries.size(); ++i) {
      if (entries[i].revents != 0) forwardOutput(*owners[i]);
    }
  }

  static void forwardOutput(Rank& rank) {
    std::string bytes;
    const bool open = readAvailable(rank.process.output().get(), bytes);
    rank.output.append(bytes);
    if (!open) rank.process.output().reset();
  }

  void reapEnded() {
    for (auto& rank : ranks_) {
      if (!rank->process.running() || !rank->process.tryReap()) continue;
      // Whatever it wrote before exiting is in the pipe now; later writers (its own children)
      // are not waited for.
      if (rank->process.output().valid()) {
        forwardOutput(*rank);
        rank->process.output().reset();
      }
      rank->output.finish();
      rank->result.status = rank->process.status();
      rank->result.wallSeconds = secondsSince(rank->started);
      if (!rank->result.status->success() && reason_ == StopReason::kNone) {
        reason_ = StopReason::kRankFailed;
        firstFailedRank_ = rank->result.rank;
        failStopAt_ = deadlineAfter(settings_.failGraceSeconds);
        if (anyRunning()) {
          message("rank " + std::to_string(firstFailedRank_) + " failed (" +
                  rank->result.status->describe() + "); stopping the others in " +
                  formatSeconds(settings_.failGraceSeconds) + " s unless they end first");
        }
      }
    }
  }

  const SupervisorSettings& settings_;
  SignalPipe& signals_;
  std::vector<std::unique_ptr<Rank>> ranks_;
  std::optional<Clock::time_point> timeoutAt_, failStopAt_, killAt_, giveUpAt_;
  bool stopping_ = false;
  bool gaveUp_ = false;
  StopReason reason_ = StopReason::kNone;
  int firstFailedRank_ = -1;
  int stopSignal_ = 0;
  std::vector<int> runningAtTimeout_;
};

}  // namespace

JobResult superviseRanks(const std::vector<ChildSpec>& specs, const SupervisorSettings& settings,
                         SignalPipe& signals) {
  Supervision supervision(settings, signals);
  supervision.start(specs);
  return supervision.run();
}

}  // namespace nccl_moe::launcher
