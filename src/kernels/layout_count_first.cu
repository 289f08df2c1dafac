// The count-first layout engine (NCCL_MOE_LAYOUT_ENGINE=1): the same handle as the scan engine
// (kernels/layout.cu) in three kernels, with no scan over other ranks' routing.
//   1. positions  each source rank, a chunk of 256 of its own tokens per block: checks and
//                 normalises the routing into its meta (as the scan engine does) and, per
//                 selection, where its token stands inside the chunk among the tokens that select
//                 the selection's rank, expert and domain (bit masks in shared memory, popcounts:
//                 token order, so deterministic); the chunk's counts go to the handle's scratch;
//   2. finish     adds the counts of the earlier chunks (each block for its own chunk), so every
//                 position is the token's place among all the rank's tokens; the last block to
//                 finish writes the rank's counts and header into its meta and announces it;
//   3. scan       on every rank, after the meta arrived: offsets from the counts alone (every block
//                 derives them; block 0 also writes them to the handle), then one pass over every
//                 source's tokens places each received pair and row at offset + position, and one
//                 over the routed tokens writes their pair slots at each destination; the last
//                 block releases the meta.
// The data each rank reads of the others is the same as in the scan engine (their meta); what is
// gone is the scans over it (about 11 launches, each waiting for the last, become 3). The result is
// the canonical layout of reference/layout.h, as reference/count_first_layout.h models step by step.
#include <algorithm>

#include "kernels/layout_meta.cuh"
#include "misc/launch_error.h"

namespace nccl_moe {

namespace {

using namespace layout_meta;

constexpr int kMaskWords = kThreads / 32;  // one bit per token of a chunk

// Counters of a rank's routing, in the order of its meta counts: tokens per destination rank,
// selections per expert, tokens per domain.
struct Counters {
  int ranks;
  int experts;
  int domains;
  __device__ int total() const { return ranks + experts + domains; }
  __device__ int ofRank(int r) const { return r; }
  __device__ int ofExpert(int e) const { return ranks + e; }
  __device__ int ofDomain(int m) const { return ranks + experts + m; }
};

__device__ __forceinline__ Counters countersOf(const DomainView& view, const GroupDims& dims) {
  return Counters{view.ranks, dims.experts, view.domains};
}

// Tokens of the chunk before this thread's token whose bit is set in the counter's mask.
__device__ __forceinline__ int32_t tokensBefore(const uint32_t* mask) {
  const int word = threadIdx.x / 32, bit = threadIdx.x % 32;
  int32_t below = __popc(mask[word] & ((1u << bit) - 1u));
  for (int w = 0; w < word; ++w) below += __popc(mask[w]);
  return below;
}

// True in the one block that finishes last; then every other block's writes are visible to it.
__device__ bool lastBlockDone(int32_t* ticket) {
  __shared__ int last;
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence_system();
    last = atomicAdd(ticket, 1) == static_cast<int>(gridDim.x) - 1;
    if (last) *ticket = 0;  // ready for the next layout on this handle
  }
  __syncthreads();
  if (last) __threadfence_system();
  return last != 0;
}

// 1. One chunk of this rank's tokens per block (thread = token).
__global__ void __launch_bounds__(kThreads) chunkPositionsKernel(DomainView view, GroupDims dims, LayoutInput in,
                                                                 HandleDevice handle, uint64_t* faultKey) {
  extern __shared__ uint32_t masks[];  // [counter][kMaskWords]
  if (!waitForPeers(view, kPhaseMetaRead, view.epochs->lastMeta)) return;
  const Counters counters = countersOf(view, dims);
  const int W = dims.metaWidth, L = dims.localExperts, domainExperts = L * view.localRanks;
  MetaSelection* meta = metaSelections(view, view.rank);
  MetaPosition* positions = metaPositions(view, view.rank);
  const int chunks = (in.numTokens + kThreads - 1) / kThreads;
  for (int chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    for (int i = threadIdx.x; i < counters.total() * kMaskWords; i += blockDim.x) masks[i] = 0;
    __syncthreads();
    const int t = chunk * kThreads + threadIdx.x;
    const bool mine = t < in.numTokens;
    MetaSelection* sel = meta + static_cast<size_t>(t) * W;
    const uint32_t bit = 1u << (threadIdx.x % 32);
    const int word = threadIdx.x / 32;
    if (mine) {
      const uint64_t fault = normaliseToken(dims, in, t, sel);
      if (fault != ~0ull) atomicMin(reinterpret_cast<unsigned long long*>(faultKey), fault);
      for (int k = 0; k < W; ++k) {
        const int e = sel[k].expert;
        if (e < 0) continue;
        atomicOr(&masks[counters.ofExpert(e) * kMaskWords + word], bit);
        atomicOr(&masks[counters.ofRank(e / L) * kMaskWords + word], bit);
        atomicOr(&masks[counters.ofDomain(e / domainExperts) * kMaskWords + word], bit);
      }
    }
    __syncthreads();
    if (mine)
      for (int k = 0; k < W; ++k) {
        const int e = sel[k].expert;
        MetaPosition& p = positions[static_cast<size_t>(t) * W + k];
        if (e < 0) {
          p = MetaPosition{-1, -1, -1};
          continue;
        }
        p = MetaPosition{tokensBefore(&masks[counters.ofRank(e / L) * kMaskWords]),
                         tokensBefore(&masks[counters.ofExpert(e) * kMaskWords]),
                         tokensBefore(&masks[counters.ofDomain(e / domainExperts) * kMaskWords])};
      }
    int32_t* chunkCounts = handle.scanCounts + static_cast<size_t>(chunk) * counters.total();
    for (int c = threadIdx.x; c < counters.total(); c += blockDim.x) {
      int32_t tokens = 0;
      for (int w = 0; w < kMaskWords; ++w) tokens += __popc(masks[c * kMaskWords + w]);
      chunkCounts[c] = tokens;
    }
    __syncthreads();  // the masks are cleared for the next chunk
  }
}

// 2. Positions among all the rank's tokens; the rank's counts and header; the announcement.
__global__ void __launch_bounds__(kThreads) finishPositionsKernel(DomainView view, GroupDims dims, LayoutInput in,
                                                                  HandleDevice handle, uint64_t* faultKey) {
  extern __shared__ int32_t earlier[];  // [counter]: the counts of the chunks before this block's
  const Counters counters = countersOf(view, dims);
  const int W = dims.metaWidth, L = dims.localExperts, domainExperts = L * view.localRanks;
  const MetaSelection* meta = metaSelections(view, view.rank);
  MetaPosition* positions = metaPositions(view, view.rank);
  const int chunks = (in.numTokens + kThreads - 1) / kThreads;
  const bool failed = blockErrorRaised(view);  // the positions kernel gave up waiting: nothing to finish
  for (int chunk = blockIdx.x; chunk < chunks && !failed; chunk += gridDim.x) {
    for (int c = threadIdx.x; c < counters.total(); c += blockDim.x) {
      int32_t sum = 0;
      for (int j = 0; j < chunk; ++j) sum += handle.scanCounts[static_cast<size_t>(j) * counters.total() + c];
      earlier[c] = sum;
    }
    __syncthreads();
    const int t = chunk * kThreads + threadIdx.x;
    if (t < in.numTokens)
      for (int k = 0; k < W; ++k) {
        const int e = meta[static_cast<size_t>(t) * W + k].expert;
        if (e < 0) continue;
        MetaPosition& p = positions[static_cast<size_t>(t) * W + k];
        p.pair += earlier[counters.ofRank(e / L)];
        p.row += earlier[counters.ofExpert(e)];
        p.domain += earlier[counters.ofDomain(e / domainExperts)];
      }
    __syncthreads();  // `earlier` is rewritten for the next chunk
  }
  if (!lastBlockDone(&handle.layoutTickets[0]) || failed || blockErrorRaised(view)) return;
  int32_t* totals = metaCounts(view, view.rank);
  for (int c = threadIdx.x; c < counters.total(); c += blockDim.x) {
    int32_t sum = 0;
    for (int j = 0; j < chunks; ++j) sum += handle.scanCounts[static_cast<size_t>(j) * counters.total() + c];
    totals[c] = sum;
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  writeMetaHeader(view, dims, in, faultKey);
  // With several domains the meta first crosses the network; the network stream signals.
  if (view.domains == 1) signalPeers(view, kPhaseMetaReady, callEpoch(view));
}

// Offsets of one layout on this rank, from the group's counts (what every block of the scan
// kernel derives into shared memory).
struct ScanOffsets {
  int64_t* pairBase;     // [R]: first pair slot here of each source
  int64_t* rowBase;      // [R][L]: expert-major first row here of (source, local expert)
  int64_t* segmentStart; // [L]
  int64_t* segmentKept;  // [L]
  int64_t* routeBase;    // [M][D]: first pair slot at destination (my domain, j) of origin o's source
};

inline size_t scanOffsetsWords(int R, int L, int M, int D) {
  return static_cast<size_t>(R) + static_cast<size_t>(R) * L + 2 * static_cast<size_t>(L) +
         static_cast<size_t>(M) * D;
}

__device__ __forceinline__ int32_t countOf(const DomainView& view, int rank, int counter) {
  return metaCounts(view, rank)[counter];
}

// The offsets, in every block; block 0 also stores them and the reported counts in the handle.
__device__ void deriveOffsets(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                              const ScanOffsets& o) {
  const Counters counters = countersOf(view, dims);
  const int R = view.ranks, L = dims.localExperts, me = view.rank, D = view.localRanks;
  const bool store = blockIdx.x == 0;
  const int64_t pairs = blockExclusiveScan(
      R, [&](int s) { return static_cast<int64_t>(countOf(view, s, counters.ofRank(me))); },
      [&](int s, int64_t prefix, int64_t) {
        o.pairBase[s] = prefix;
        if (store) handle.pairBase[s] = prefix;
      });
  const int64_t padded = blockExclusiveScan(
      L,
      [&](int l) {
        int64_t segment = 0;
        for (int s = 0; s < R; ++s) segment += countOf(view, s, counters.ofExpert(me * L + l));
        if (store) handle.segmentPairs[l] = segment;
        return (segment + handle.padMultiple - 1) / handle.padMultiple * handle.padMultiple;
      },
      [&](int l, int64_t start, int64_t paddedHere) {
        int64_t within = 0;
        for (int s = 0; s < R; ++s) {
          o.rowBase[static_cast<size_t>(s) * L + l] = start + within;
          if (store) handle.rowBase[static_cast<size_t>(s) * L + l] = start + within;
          within += countOf(view, s, counters.ofExpert(me * L + l));
        }
        int64_t keptHere = paddedHere;
        if (handle.rowBudget >= 0) keptHere = max(int64_t{0}, min(paddedHere, handle.rowBudget - start));
        o.segmentStart[l] = start;
        o.segmentKept[l] = keptHere;
        if (store) {
          handle.segmentStart[l] = start;
          handle.segmentKept[l] = keptHere;
          handle.tokensPerExpert[l] = handle.expertMajor ? keptHere : within;
        }
      });
  // Routes: the pairs of lower source ranks at each destination of this domain.
  for (int i = threadIdx.x; i < view.domains * D; i += blockDim.x) {
    const int source = routeSource(view, i / D), destination = view.domain * D + i % D;
    int64_t below = 0;
    for (int s = 0; s < source; ++s) below += countOf(view, s, counters.ofRank(destination));
    o.routeBase[i] = below;
  }
  if (store && threadIdx.x == 0) {
    int someBudgeted = 0;
    for (int s = 0; s < R; ++s) someBudgeted |= metaHeader(view, s)->blocking == 0;
    writeReportedCounts(handle, pairs, padded, someBudgeted != 0);
    if (view.domains > 1)
      for (int m = 0; m < view.domains; ++m) {
        const bool own = m == view.domain;
        // My tokens packed for domain m; the rail peer's tokens for my domain relayed here.
        handle.netRows[m] = own ? 0 : countOf(view, me, counters.ofDomain(m));
        handle.netRows[view.domains + m] = own ? 0 : countOf(view, routeSource(view, m), counters.ofDomain(view.domain));
      }
  }
  __syncthreads();
}

// The pair slot and rows here of source s's token t, if it selects an expert of this rank.
__device__ void placeReceived(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                              const ScanOffsets& o, int s, int t) {
  const int W = dims.metaWidth, L = dims.localExperts, me = view.rank;
  const MetaSelection* sel = metaSelections(view, s) + static_cast<size_t>(t) * W;
  const MetaPosition* pos = metaPositions(view, s) + static_cast<size_t>(t) * W;
  int first = -1;
  for (int k = 0; k < W && first < 0; ++k)
    if (sel[k].expert >= 0 && sel[k].expert / L == me) first = k;
  if (first < 0) return;
  const int64_t slot = o.pairBase[s] + pos[first].pair;
  const bool remote = s / view.localRanks != view.domain;
  // A source in another domain: its row in the rail peer's network receive slot for this domain.
  const int32_t netRow = remote ? pos[first].domain : -1;
  handle.recvPairs[slot] = RecvEntry{s, t, -1, netRow};
  MetaSelection* local = handle.pairSel + slot * W;
  for (int k = 0; k < W; ++k) {
    const bool here = sel[k].expert >= 0 && sel[k].expert / L == me;
    local[k] = here ? MetaSelection{sel[k].expert - me * L, sel[k].slot, sel[k].prob}
                    : MetaSelection{-1, sel[k].slot, 0.0f};
    if (!handle.expertMajor) continue;
    int32_t row = -1;
    if (here) {
      const int l = sel[k].expert - me * L;
      const int64_t at = o.rowBase[static_cast<size_t>(s) * L + l] + pos[k].row;
      if (handle.rowBudget < 0 || at < handle.rowBudget) {
        handle.recvRows[at] = RecvEntry{s, t, l, netRow};
        handle.recvRowProb[at] = sel[k].prob;
        row = static_cast<int32_t>(at);
      }
    }
    handle.pairRows[slot * W + k] = row;
  }
}

// What this rank routes of origin o's token t (its own tokens for its domain, its rail peer's for
// another): the pair slot at each destination of this domain (in destination order), which pair
// carries each selection, and (two-hop) the token's rows in the network slots.
__device__ void placeRouted(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                            const ScanOffsets& o, int origin, int t) {
  const int W = dims.metaWidth, L = dims.localExperts, D = view.localRanks, T = dims.maxTokens;
  const int low = view.domain * D, domainExperts = L * D;
  const int s = routeSource(view, origin);
  const int tokens = metaHeader(view, s)->numTokens;
  const bool own = origin == view.domain;
  const size_t at = static_cast<size_t>(origin) * T + t;
  if (t == 0) handle.routeTokens[origin] = tokens;
  if (view.domains > 1) {
    // Network rows: the rail peer's token t relayed here, my token t packed for domain `origin`.
    int32_t relay = -1, pack = -1;
    if (!own && t < tokens) {
      const MetaSelection* sel = metaSelections(view, s) + static_cast<size_t>(t) * W;
      const MetaPosition* pos = metaPositions(view, s) + static_cast<size_t>(t) * W;
      for (int k = 0; k < W && relay < 0; ++k)
        if (sel[k].expert >= 0 && sel[k].expert / domainExperts == view.domain) relay = pos[k].domain;
    }
    if (!own && t < handle.numTokens) {
      const MetaSelection* sel = metaSelections(view, view.rank) + static_cast<size_t>(t) * W;
      const MetaPosition* pos = metaPositions(view, view.rank) + static_cast<size_t>(t) * W;
      for (int k = 0; k < W && pack < 0; ++k)
        if (sel[k].expert >= 0 && sel[k].expert / domainExperts == origin) pack = pos[k].domain;
    }
    handle.relayIndex[at] = relay;
    handle.packIndex[at] = pack;
  }
  if (t >= tokens) return;
  const MetaSelection* sel = metaSelections(view, s) + static_cast<size_t>(t) * W;
  const MetaPosition* pos = metaPositions(view, s) + static_cast<size_t>(t) * W;
  int inDomain = 0;
  for (int k = 0; k < W; ++k) {
    const int owner = sel[k].expert >= 0 ? sel[k].expert / L : -1;
    const bool here = owner >= low && owner < low + D;
    const int pairIndex = here ? groupsBetween(sel, W, L, low, owner) : -1;
    if (here && firstOfGroup(sel, k, L)) {
      ++inDomain;
      const int j = owner - low;
      handle.routePairs[at * W + pairIndex] =
          SendPair{j, static_cast<int32_t>(o.routeBase[static_cast<size_t>(origin) * D + j] + pos[k].pair)};
    }
    if (own)
      handle.ownSel[static_cast<size_t>(t) * W + k] = OwnSelection{pairIndex, sel[k].slot, owner >= 0 ? owner / D : -1};
    else
      handle.routeSelPair[at * W + k] = pairIndex;
  }
  handle.routePairCount[at] = inDomain;
}

// 3. The receive side and the routes of this rank, from the group's counts and positions.
__global__ void __launch_bounds__(kThreads) countFirstScanKernel(DomainView view, GroupDims dims, HandleDevice handle) {
  extern __shared__ int64_t offsetWords[];
  const int R = view.ranks, L = dims.localExperts, M = view.domains, T = dims.maxTokens;
  bool proceed = waitForPeers(view, kPhaseMetaReady, callEpoch(view));
  if (proceed && groupFault(view, handle)) proceed = false;
  if (proceed) {
    ScanOffsets o;
    o.pairBase = offsetWords;
    o.rowBase = o.pairBase + R;
    o.segmentStart = o.rowBase + static_cast<size_t>(R) * L;
    o.segmentKept = o.segmentStart + L;
    o.routeBase = o.segmentKept + L;
    deriveOffsets(view, dims, handle, o);
    const int64_t threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
    const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t received = static_cast<int64_t>(R) * T;
    for (int64_t u = first; u < received; u += threads) {
      const int s = static_cast<int>(u / T), t = static_cast<int>(u % T);
      if (t < metaHeader(view, s)->numTokens) placeReceived(view, dims, handle, o, s, t);
    }
    const int64_t routed = static_cast<int64_t>(M) * T;
    for (int64_t u = first; u < routed; u += threads)
      placeRouted(view, dims, handle, o, static_cast<int>(u / T), static_cast<int>(u % T));
    if (handle.expertMajor) {
      // The padding rows of each segment (rows past a budget are not kept).
      const int64_t limit = handle.rowBudget >= 0 ? handle.rowBudget : INT64_MAX;
      for (int l = blockIdx.x; l < L; l += gridDim.x) {
        int64_t pairs = 0;
        for (int s = 0; s < R; ++s) pairs += countOf(view, s, countersOf(view, dims).ofExpert(view.rank * L + l));
        const int64_t end = min(o.segmentStart[l] + o.segmentKept[l], limit);
        for (int64_t row = o.segmentStart[l] + pairs + threadIdx.x; row < end; row += blockDim.x) {
          handle.recvRows[row] = RecvEntry{-1, -1, -1, -1};
          handle.recvRowProb[row] = 0.0f;
        }
      }
    }
  }
  // Every block has read the peers' meta: they may overwrite it in their next layout.
  if (!lastBlockDone(&handle.layoutTickets[1]) || threadIdx.x != 0 || errorRaised(view)) return;
  const uint64_t epoch = callEpoch(view);
  signalPeers(view, kPhaseMetaRead, epoch);
  view.epochs->lastMeta = epoch;
  view.epochs->current = epoch;
}

// Dynamic shared memory of a kernel; above the default 48 KiB the kernel must opt in.
template <class Kernel>
cudaError_t allowSharedBytes(Kernel kernel, size_t bytes) {
  constexpr size_t kDefaultLimit = 48 * 1024;
  if (bytes <= kDefaultLimit) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
}

}  // namespace

cudaError_t launchCountFirstPublish(const DomainView& view, const GroupDims& dims, const LayoutInput& input,
                                    const HandleDevice& handle, uint64_t* faultKey, LaunchBudget budget,
                                    cudaStream_t stream) {
  discardEarlierLaunchError();
  const size_t counters = static_cast<size_t>(view.ranks) + dims.experts + view.domains;
  const size_t maskBytes = counters * kMaskWords * sizeof(uint32_t);
  cudaError_t err = cudaMemsetAsync(handle.counts, 0, sizeof(HandleCounts), stream);
  if (err == cudaSuccess) err = cudaMemsetAsync(handle.layoutTickets, 0, 2 * sizeof(int32_t), stream);
  if (err == cudaSuccess) err = allowSharedBytes(chunkPositionsKernel, maskBytes);
  if (err != cudaSuccess) return err;
  const int grid = cappedGrid(input.numTokens, kThreads, budget);
  chunkPositionsKernel<<<grid, kThreads, maskBytes, stream>>>(view, dims, input, handle, faultKey);
  finishPositionsKernel<<<grid, kThreads, counters * sizeof(int32_t), stream>>>(view, dims, input, handle, faultKey);
  return cudaGetLastError();
}

cudaError_t launchCountFirstScan(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                                 LaunchBudget budget, cudaStream_t stream) {
  discardEarlierLaunchError();
  const size_t offsetBytes = scanOffsetsWords(view.ranks, dims.localExperts, view.domains, view.localRanks) *
                             sizeof(int64_t);
  if (cudaError_t err = allowSharedBytes(countFirstScanKernel, offsetBytes); err != cudaSuccess) return err;
  const int64_t units = static_cast<int64_t>(std::max(view.ranks, view.domains)) * dims.maxTokens;
  countFirstScanKernel<<<cappedGrid(units, kThreads, budget), kThreads, offsetBytes, stream>>>(view, dims, handle);
  return cudaGetLastError();
}

}  // namespace nccl_moe
