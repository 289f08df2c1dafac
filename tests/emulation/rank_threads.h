// Runs an emulated EP group: every rank executes the same phases, and no rank starts phase p + 1
// before every rank finished phase p (the barrier a GPU protocol gets from its flags).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace nccl_moe::emulation {

// Reusable barrier for a fixed number of threads (C++17 has no std::barrier).
class PhaseBarrier {
 public:
  explicit PhaseBarrier(int threads) : threads_(threads) {}
  void arriveAndWait();

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  int threads_;
  int waiting_ = 0;
  uint64_t generation_ = 0;
};

using RankPhase = std::function<void(int rank)>;

// Calls phase(rank) for every rank and phase, phases in order, one barrier between phases.
// threads = 0: one thread per rank; else rank r runs on worker r % threads (for huge groups).
void runRankPhases(int ranks, int threads, const std::vector<RankPhase>& phases);

// The first failure any rank reports; the others are dropped (they usually repeat it).
class FirstError {
 public:
  void report(std::string message);
  bool any() const;
  std::string message() const;

 private:
  mutable std::mutex mutex_;
  std::string message_;
};

}  // namespace nccl_moe::emulation
