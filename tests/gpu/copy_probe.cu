// nccl-moe-copy-probe: how fast a rank's kernel moves rows to and from its peers' memory on this
// machine, without the library's calls. On the one-GPU virtual cluster a peer's buffer is memory of
// the same GPU mapped through CUDA IPC. The low-latency send halves, which write rows into peers'
// landing slots, ran at about half the copy speed, while the receive half and the high-throughput
// pulls, which write into the rank's own memory, ran near it (RESULTS.md, 2026-12-08): this
// separates the direction (writing to a peer, reading from one) from the kernels. One rank of a job
// started by any launcher (nccl-moe-run -np N [--mps] -- nccl-moe-copy-probe); every rank runs each
// mode at once, rows of --row-bytes (default 14336: a 7168-channel BF16 row), --mib MiB per rank:
//
//   memcpy   cudaMemcpyAsync of the rank's own source into its own destination (the copy floor's way)
//   local    the copy kernel, own source -> own destination
//   push     the copy kernel, own source -> the peers' destinations, row i to peer i mod (R - 1)
//            after this rank (how the LL send halves write)
//   pull     the copy kernel, the peers' sources -> own destination, row i from peer i mod (R - 1)
//            after this rank (how the HT dispatch reads)
//
// The copy kernel is the LL kernels' shape: --blocks (16) x 512 threads, a warp per row copied by
// the library's warpCopyBytes (8 16-byte loads in flight per lane before the stores). Rank 0 prints
// GB/s = bytes read (= bytes written) by all ranks / the slowest rank's time per round, over
// --rounds rounds.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "kernels/row_ops.cuh"
#include "nccl_moe_bootstrap.h"
#include "probe_support.h"

namespace {

constexpr int kMaxRanks = 64;
constexpr int kThreads = 512;

enum class Mode : int { kLocal, kPush, kPull };

// Rank r's buffer: the source region, then the destination region, `regionBytes` each.
struct Buffers {
  uint8_t* base[kMaxRanks];
  int ranks;
  int rank;
  int64_t regionBytes;
};

// Row i of this rank in a mode: where it is read and written. Push and pull spread the rows over
// the R - 1 peers in turn; each peer's region is cut into R - 1 slices, one per writer (push) or
// reader (pull), so no two ranks touch the same bytes.
__device__ void rowEnds(const Buffers& b, Mode mode, int64_t i, int rowBytes, const uint8_t** src, uint8_t** dst) {
  const int64_t ownOffset = i * rowBytes;
  if (mode == Mode::kLocal) {
    *src = b.base[b.rank] + ownOffset;
    *dst = b.base[b.rank] + b.regionBytes + ownOffset;
    return;
  }
  const int others = b.ranks - 1;
  const int peer = (b.rank + 1 + static_cast<int>(i % others)) % b.ranks;
  const int64_t slice = b.regionBytes / others / rowBytes * rowBytes;
  const int mySlice = b.rank < peer ? b.rank : b.rank - 1;  // this rank among the peer's others
  const int64_t peerOffset = mySlice * slice + (i / others) * rowBytes;
  if (mode == Mode::kPush) {
    *src = b.base[b.rank] + ownOffset;
    *dst = b.base[peer] + b.regionBytes + peerOffset;
  } else {
    *src = b.base[peer] + peerOffset;
    *dst = b.base[b.rank] + b.regionBytes + ownOffset;
  }
}

// A warp per row with the library's warp copy (what the LL kernels run).
__global__ void __launch_bounds__(kThreads) copyRowsKernel(Buffers b, Mode mode, int64_t rows, int rowBytes) {
  for (int64_t i = nccl_moe::globalWarp(); i < rows; i += nccl_moe::warpsInGrid()) {
    const uint8_t* src;
    uint8_t* dst;
    rowEnds(b, mode, i, rowBytes, &src, &dst);
    nccl_moe::warpCopyBytes(dst, src, rowBytes);
  }
}

struct Probe {
  Buffers buffers{};
  ncclComm_t nccl = nullptr;
  cudaStream_t stream = nullptr;
  float* token = nullptr;  // the host barrier's all-reduce word
  double* reduced = nullptr;

  void hostBarrier() {
    probe::check(ncclAllReduce(token, token, 1, ncclFloat, ncclSum, nccl, stream), "ncclAllReduce");
    probe::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }
  double slowest(double mine) {
    probe::check(cudaMemcpy(reduced, &mine, sizeof(mine), cudaMemcpyHostToDevice), "cudaMemcpy");
    probe::check(ncclAllReduce(reduced, reduced, 1, ncclDouble, ncclMax, nccl, stream), "ncclAllReduce");
    probe::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    probe::check(cudaMemcpy(&mine, reduced, sizeof(mine), cudaMemcpyDeviceToHost), "cudaMemcpy");
    return mine;
  }
};

}  // namespace

int main(int argc, char** argv) {
  probe::gProgram = "copy-probe";
  const int mib = probe::intFlag(argc, argv, "--mib", 64);
  const int rowBytes = probe::intFlag(argc, argv, "--row-bytes", 14336);
  const int blocks = probe::intFlag(argc, argv, "--blocks", 16);
  const int rounds = probe::intFlag(argc, argv, "--rounds", 20);
  const nccl_moe::RankBootstrap me = probe::bootstrapOrExit();
  const int R = me.layout.size;
  if (R > kMaxRanks || mib < 1 || mib > 4096 || rowBytes < 16 || rowBytes % 16 != 0 || blocks < 1 || rounds < 1) {
    std::fprintf(stderr,
                 "copy-probe: needs at most %d ranks, --mib 1..4096, --row-bytes a multiple of 16, --blocks >= 1, "
                 "--rounds >= 1\n",
                 kMaxRanks);
    return 2;
  }
  Probe p;
  probe::check(ncclCommInitRank(&p.nccl, R, me.uniqueId, me.layout.rank), "ncclCommInitRank");
  probe::check(cudaStreamCreateWithFlags(&p.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  probe::check(cudaMalloc(&p.token, sizeof(float)), "cudaMalloc");
  probe::check(cudaMalloc(&p.reduced, sizeof(double)), "cudaMalloc");
  // Whole rows in every peer slice: the row count is a multiple of R - 1.
  const int64_t perSlice = static_cast<int64_t>(mib) * 1024 * 1024 / rowBytes / (R > 1 ? R - 1 : 1);
  const int64_t rows = perSlice * (R > 1 ? R - 1 : 1);
  const int64_t regionBytes = rows * rowBytes;
  uint8_t* mine = nullptr;
  probe::check(cudaMalloc(&mine, 2 * regionBytes), "cudaMalloc");
  probe::check(cudaMemset(mine, 1, 2 * regionBytes), "cudaMemset");
  const std::vector<void*> peers = probe::openPeerBuffers(mine, R, me.layout.rank, p.nccl, p.stream);
  p.buffers.ranks = R;
  p.buffers.rank = me.layout.rank;
  p.buffers.regionBytes = regionBytes;
  for (int r = 0; r < R; ++r) p.buffers.base[r] = static_cast<uint8_t*>(peers[r]);
  cudaEvent_t begin = nullptr, end = nullptr;
  probe::check(cudaEventCreate(&begin), "cudaEventCreate");
  probe::check(cudaEventCreate(&end), "cudaEventCreate");
  if (me.layout.rank == 0)
    std::printf("# copy probe: %d ranks, %.1f MiB per rank and mode (%lld rows of %d B), kernel grid %d x %d, %d rounds\n"
                "# mode      GB/s (all ranks' bytes read / slowest rank's time)   us per round\n",
                R, regionBytes / 1048576.0, static_cast<long long>(rows), rowBytes, blocks, kThreads, rounds);
  const char* const names[] = {"memcpy", "local", "push", "pull"};
  for (int m = 0; m < 4; ++m) {
    if (m >= 2 && R < 2) break;  // push and pull need a peer
    for (int pass = 0; pass < 2; ++pass) {  // the first pass warms up (lazy peer mappings, clocks)
      p.hostBarrier();
      probe::check(cudaEventRecord(begin, p.stream), "cudaEventRecord");
      for (int i = 0; i < rounds; ++i) {
        if (m == 0)
          probe::check(cudaMemcpyAsync(mine + regionBytes, mine, regionBytes, cudaMemcpyDeviceToDevice, p.stream),
                       "cudaMemcpyAsync");
        else
          copyRowsKernel<<<blocks, kThreads, 0, p.stream>>>(p.buffers, static_cast<Mode>(m - 1), rows, rowBytes);
      }
      probe::check(cudaEventRecord(end, p.stream), "cudaEventRecord");
      probe::check(cudaGetLastError(), "launch(copy rows)");
      probe::check(cudaEventSynchronize(end), "cudaEventSynchronize");
      float ms = 0.0f;
      probe::check(cudaEventElapsedTime(&ms, begin, end), "cudaEventElapsedTime");
      const double us = p.slowest(static_cast<double>(ms) * 1000.0 / rounds);
      if (pass == 1 && me.layout.rank == 0)
        std::printf("  %-8s %10.1f %38.1f\n", names[m], static_cast<double>(regionBytes) * R / (us * 1e3), us);
    }
  }
  p.hostBarrier();
  probe::closePeerBuffers(peers, me.layout.rank);
  ncclCommDestroy(p.nccl);
  return 0;
}
