#include "rank_threads.h"

#include <thread>

namespace nccl_moe::emulation {

void PhaseBarrier::arriveAndWait() {
  std::unique_lock<std::mutex> lock(mutex_);
  const uint64_t generation = generation_;
  if (++waiting_ == threads_) {
    waiting_ = 0;
    ++generation_;
    released_.notify_all();
    return;
  }
  released_.wait(lock, [&] { return generation_ != generation; });
}

void runRankPhases(int ranks, int threads, const std::vector<RankPhase>& phases) {
  const int workers = threads > 0 && threads < ranks ? threads : ranks;
  if (workers <= 0) return;
  PhaseBarrier barrier(workers);
  auto work = [&](int worker) {
    for (const RankPhase& phase : phases) {
      for (int rank = worker; rank < ranks; rank += workers) phase(rank);
      barrier.arriveAndWait();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(workers);
  for (int w = 0; w < workers; ++w) pool.emplace_back(work, w);
  for (std::thread& thread : pool) thread.join();
}

void FirstError::report(std::string message) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (message_.empty()) message_ = std::move(message);
}

bool FirstError::any() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !message_.empty();
}

std::string FirstError::message() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return message_;
}

}  // namespace nccl_moe::emulation
