// nccl-moe-signal-probe: what one cross-rank wait costs on this machine, without the library. The
// low-latency calls and the layout measured hundreds of microseconds per wait on the one-GPU virtual
// cluster (RESULTS.md, 2026-12-07), growing with the number of ranks; this separates the machine
// (processes sharing the GPU, MPS or not) from the way a kernel waits. One rank of a job started by
// any launcher (nccl-moe-run -np N [--mps] -- nccl-moe-signal-probe):
//
//   pingpong  rank 0 and rank 1, one thread each, `--rounds` round trips inside one kernel
//   barrier   every rank, one kernel, `--rounds` barriers; block 0 announces, every block polls
//             every peer's word with the first `ranks` threads (the library's wait pattern)
//   launches  every rank, `--rounds` kernels of one barrier each, back to back on one stream
//
// each with four polling styles: ld.acquire.sys in the loop, ld.relaxed.sys then one acquire load,
// ld.volatile then a system fence, and the library's waits as they are (acquire polling plus a
// host-mapped error word read at kernel start and every 1024 spins). Rank 0 prints microseconds per round
// trip, barrier or kernel. Every wait gives up after one second and says so.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "nccl_moe_bootstrap.h"
#include "probe_support.h"

namespace {

constexpr int kMaxRanks = 64;
constexpr uint64_t kTimeoutNs = 1000000000ull;
// kLibrary: the library's waits as they are (ld.acquire.sys in the loop, and a host-mapped error
// word read by every thread at kernel start and every 1024 spins).
enum class Poll : int { kAcquire = 0, kRelaxed = 1, kVolatile = 2, kLibrary = 3 };
const char* const kPollNames[] = {"ld.acquire.sys", "ld.relaxed.sys + acquire", "ld.volatile + fence",
                                  "acquire + host word (library)"};

struct Peers {
  uint64_t* words[kMaxRanks];  // every rank's word array (this rank's own included)
  int ranks;
  int rank;
  const int* hostWord;  // host-mapped, always 0 (what the library's error record is to its waits)
};

__device__ __forceinline__ uint64_t nowNs() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

template <Poll kPoll>
__device__ __forceinline__ uint64_t pollLoad(const uint64_t* p) {
  uint64_t v;
  if constexpr (kPoll == Poll::kAcquire || kPoll == Poll::kLibrary)
    asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  else if constexpr (kPoll == Poll::kRelaxed)
    asm volatile("ld.relaxed.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  else
    v = *reinterpret_cast<const volatile uint64_t*>(p);
  return v;
}

// Spins until *p >= target; false after the timeout (counted in *timeouts).
template <Poll kPoll>
__device__ bool waitAtLeast(const uint64_t* p, uint64_t target, unsigned* timeouts, const int* hostWord) {
  const uint64_t start = nowNs();
  uint32_t spins = 0;
  while (pollLoad<kPoll>(p) < target)
    if ((++spins & 1023u) == 0) {
      if (kPoll == Poll::kLibrary && *reinterpret_cast<const volatile int*>(hostWord) != 0) return false;
      if (nowNs() - start > kTimeoutNs) {
        atomicAdd(timeouts, 1u);
        return false;
      }
    }
  if constexpr (kPoll == Poll::kRelaxed) {
    uint64_t v;
    asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  } else if constexpr (kPoll == Poll::kVolatile) {
    __threadfence_system();
  }
  return true;
}

__device__ __forceinline__ void storeRelease(uint64_t* p, uint64_t v) {
  asm volatile("st.release.sys.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

// Word layout of every rank: [0] ping (rank 1's), [1] pong (rank 0's), [2 + r] barrier word of rank r.
template <Poll kPoll>
__global__ void pingPongKernel(Peers peers, uint64_t base, int rounds, uint64_t* elapsedNs, unsigned* timeouts) {
  if (threadIdx.x != 0 || blockIdx.x != 0 || peers.rank > 1) return;
  const uint64_t start = nowNs();
  for (int i = 1; i <= rounds; ++i) {
    if (peers.rank == 0) {
      storeRelease(&peers.words[1][0], base + i);
      if (!waitAtLeast<kPoll>(&peers.words[0][1], base + i, timeouts, peers.hostWord)) return;
    } else {
      if (!waitAtLeast<kPoll>(&peers.words[1][0], base + i, timeouts, peers.hostWord)) return;
      storeRelease(&peers.words[0][1], base + i);
    }
  }
  *elapsedNs = nowNs() - start;
}

// One barrier: block 0 announces `epoch` to every rank; every block waits for every rank's.
template <Poll kPoll>
__device__ bool barrier(const Peers& peers, uint64_t epoch, unsigned* timeouts) {
  __shared__ int failed;
  if (threadIdx.x == 0) failed = 0;
  __syncthreads();
  if (blockIdx.x == 0)
    for (int r = threadIdx.x; r < peers.ranks; r += blockDim.x) storeRelease(&peers.words[r][2 + peers.rank], epoch);
  for (int r = threadIdx.x; r < peers.ranks; r += blockDim.x)
    if (!waitAtLeast<kPoll>(&peers.words[peers.rank][2 + r], epoch, timeouts, peers.hostWord)) failed = 1;
  __syncthreads();
  return failed == 0;
}

template <Poll kPoll>
__global__ void barrierKernel(Peers peers, uint64_t base, int rounds, uint64_t* elapsedNs, unsigned* timeouts) {
  if (kPoll == Poll::kLibrary && *reinterpret_cast<const volatile int*>(peers.hostWord) != 0) return;
  const uint64_t start = nowNs();
  for (int i = 1; i <= rounds; ++i)
    if (!barrier<kPoll>(peers, base + i, timeouts)) return;
  if (blockIdx.x == 0 && threadIdx.x == 0) *elapsedNs = nowNs() - start;
}

using probe::check;
using probe::intFlag;

struct Probe {
  Peers peers{};
  ncclComm_t nccl = nullptr;
  cudaStream_t stream = nullptr;
  uint64_t* elapsed = nullptr;  // device: [0] ns
  unsigned* timeouts = nullptr;
  float* token = nullptr;       // the host barrier's all-reduce word
  uint64_t epoch = 0;           // the same on every rank: every rank runs the same sequence

  void hostBarrier() {
    check(ncclAllReduce(token, token, 1, ncclFloat, ncclSum, nccl, stream), "ncclAllReduce");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }
  // The slowest rank's value (ns), and the timeouts of every rank.
  void report(const char* test, Poll poll, int rounds, const char* unit, bool allRanks) {
    uint64_t ns = 0;
    unsigned lost = 0;
    // The stream is non-blocking: legacy-stream copies do not wait for its kernels or collectives.
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    check(cudaMemcpy(&ns, elapsed, sizeof(ns), cudaMemcpyDeviceToHost), "cudaMemcpy");
    check(cudaMemcpy(&lost, timeouts, sizeof(lost), cudaMemcpyDeviceToHost), "cudaMemcpy");
    double mine[2] = {allRanks || peers.rank <= 1 ? static_cast<double>(ns) : 0.0, static_cast<double>(lost)};
    double* d = nullptr;
    check(cudaMalloc(&d, sizeof(mine)), "cudaMalloc");
    check(cudaMemcpy(d, mine, sizeof(mine), cudaMemcpyHostToDevice), "cudaMemcpy");
    check(ncclAllReduce(d, d, 2, ncclDouble, ncclMax, nccl, stream), "ncclAllReduce");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    check(cudaMemcpy(mine, d, sizeof(mine), cudaMemcpyDeviceToHost), "cudaMemcpy");
    check(cudaFree(d), "cudaFree");
    if (peers.rank == 0)
      std::printf("%-9s %-30s %10.2f us per %s%s\n", test, kPollNames[static_cast<int>(poll)],
                  mine[0] / 1000.0 / rounds, unit, mine[1] > 0 ? "  (TIMED OUT on some rank)" : "");
    check(cudaMemset(elapsed, 0, sizeof(uint64_t)), "cudaMemset");
    check(cudaMemset(timeouts, 0, sizeof(unsigned)), "cudaMemset");
  }
};

template <Poll kPoll>
void runStyle(Probe& p, int rounds, int blocks, int threads, cudaEvent_t begin, cudaEvent_t end) {
  p.hostBarrier();
  pingPongKernel<kPoll><<<1, 32, 0, p.stream>>>(p.peers, p.epoch, rounds, p.elapsed, p.timeouts);
  check(cudaGetLastError(), "launch(pingpong)");
  p.hostBarrier();
  p.epoch += rounds + 1;
  p.report("pingpong", kPoll, rounds, "round trip", false);

  p.hostBarrier();
  barrierKernel<kPoll><<<blocks, threads, 0, p.stream>>>(p.peers, p.epoch, rounds, p.elapsed, p.timeouts);
  check(cudaGetLastError(), "launch(barrier)");
  p.hostBarrier();
  p.epoch += rounds + 1;
  p.report("barrier", kPoll, rounds, "barrier", true);

  p.hostBarrier();
  check(cudaEventRecord(begin, p.stream), "cudaEventRecord");
  for (int i = 1; i <= rounds; ++i)
    barrierKernel<kPoll><<<blocks, threads, 0, p.stream>>>(p.peers, p.epoch + i - 1, 1, p.elapsed, p.timeouts);
  check(cudaEventRecord(end, p.stream), "cudaEventRecord");
  check(cudaGetLastError(), "launch(launches)");
  p.hostBarrier();
  p.epoch += rounds + 1;
  float ms = 0.0f;
  check(cudaEventElapsedTime(&ms, begin, end), "cudaEventElapsedTime");
  const uint64_t ns = static_cast<uint64_t>(static_cast<double>(ms) * 1e6);
  check(cudaMemcpy(p.elapsed, &ns, sizeof(ns), cudaMemcpyHostToDevice), "cudaMemcpy");
  p.report("launches", kPoll, rounds, "kernel", true);
}

}  // namespace

int main(int argc, char** argv) {
  probe::gProgram = "signal-probe";
  const int rounds = intFlag(argc, argv, "--rounds", 2000);
  const int blocks = intFlag(argc, argv, "--blocks", 16);
  const int threads = intFlag(argc, argv, "--threads", 512);
  const nccl_moe::RankBootstrap me = probe::bootstrapOrExit();
  const int R = me.layout.size;
  if (R < 2 || R > kMaxRanks || rounds < 1 || blocks < 1 || threads < 32 || threads > 1024) {
    std::fprintf(stderr, "signal-probe: needs 2..%d ranks, --rounds >= 1, --blocks >= 1, --threads 32..1024\n",
                 kMaxRanks);
    return 2;
  }
  Probe p;
  p.peers.ranks = R;
  p.peers.rank = me.layout.rank;
  check(ncclCommInitRank(&p.nccl, R, me.uniqueId, me.layout.rank), "ncclCommInitRank");
  check(cudaStreamCreateWithFlags(&p.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  uint64_t* mine = nullptr;
  const size_t bytes = (2 + kMaxRanks) * sizeof(uint64_t);
  check(cudaMalloc(&mine, bytes), "cudaMalloc");
  check(cudaMemset(mine, 0, bytes), "cudaMemset");
  check(cudaMalloc(&p.elapsed, sizeof(uint64_t)), "cudaMalloc");
  check(cudaMalloc(&p.timeouts, sizeof(unsigned)), "cudaMalloc");
  check(cudaMalloc(&p.token, sizeof(float)), "cudaMalloc");
  check(cudaMemset(p.elapsed, 0, sizeof(uint64_t)), "cudaMemset");
  check(cudaMemset(p.timeouts, 0, sizeof(unsigned)), "cudaMemset");
  const std::vector<void*> buffers = probe::openPeerBuffers(mine, R, me.layout.rank, p.nccl, p.stream);
  for (int r = 0; r < R; ++r) p.peers.words[r] = static_cast<uint64_t*>(buffers[r]);
  int* hostWord = nullptr;
  check(cudaHostAlloc(&hostWord, sizeof(int), cudaHostAllocMapped), "cudaHostAlloc");
  *hostWord = 0;
  int* deviceWord = nullptr;
  check(cudaHostGetDevicePointer(reinterpret_cast<void**>(&deviceWord), hostWord, 0), "cudaHostGetDevicePointer");
  p.peers.hostWord = deviceWord;
  cudaEvent_t begin = nullptr, end = nullptr;
  check(cudaEventCreate(&begin), "cudaEventCreate");
  check(cudaEventCreate(&end), "cudaEventCreate");
  if (me.layout.rank == 0) {
    const char* mps = std::getenv("CUDA_MPS_PIPE_DIRECTORY");
    std::printf("# signal probe: %d ranks, %d rounds, barrier grid %d x %d threads, CUDA_MPS_PIPE_DIRECTORY %s\n", R,
                rounds, blocks, threads, mps ? mps : "(unset)");
  }
  runStyle<Poll::kAcquire>(p, rounds, blocks, threads, begin, end);
  runStyle<Poll::kRelaxed>(p, rounds, blocks, threads, begin, end);
  runStyle<Poll::kVolatile>(p, rounds, blocks, threads, begin, end);
  runStyle<Poll::kLibrary>(p, rounds, blocks, threads, begin, end);
  p.hostBarrier();
  probe::closePeerBuffers(buffers, me.layout.rank);
  ncclCommDestroy(p.nccl);
  cudaFreeHost(hostWord);
  return 0;
}
