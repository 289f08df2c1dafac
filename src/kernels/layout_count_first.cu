// The count-first layout engine (NCCL_MOE_LAYOUT_ENGINE=1): the same handle as the scan engine
// (kernels/layout.cu) in two kernels, with no scan over other ranks' routing.
//   1. positions  each source rank, chunks of 256 of its own tokens handed to blocks by a ticket:
//                 checks and normalises the routing into its meta (as the scan engine does) and,
//                 per selection, where its token stands among the rank's tokens that select the
//                 selection's rank, expert and domain: inside the chunk from bit masks in shared
//                 memory (popcounts: token order, so deterministic), plus the counts of the earlier
//                 chunks, which their blocks publish in the handle's scratch; the last block to
//                 finish writes the rank's counts and header into its meta and announces it;
//   2. scan       on every rank, after the meta arrived: offsets from the counts alone (every block
//                 derives them; block 0 also writes them to the handle), then one pass over every
//                 source's tokens places each received pair and row at offset + position, and one
//                 over the routed tokens writes their pair slots at each destination; the last
//                 block writes the counts into the handle's pinned host copy and releases the meta.
// The data each rank reads of the others is the same as in the scan engine (their meta); what is
// gone is the scans over it (about 11 launches, each waiting for the last, become 2). Both kernels
// leave their tickets at zero and no memset or copy goes between them (on the virtual cluster each
// stream operation costs ~27 us). NCCL_MOE_LAYOUT_ENGINE=2 runs both steps in one kernel when there
// is one NVLink domain (no network step between them): every block waits for the peers' meta
// between the two. The result is the canonical layout of reference/layout.h, as
// reference/count_first_layout.h models step by step.
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

// Counter c summed over chunks [0, end) of the handle's chunk counts (L2: another block wrote them
// in this kernel).
__device__ __forceinline__ int32_t chunkCountsBelow(const HandleDevice& handle, int end, int total, int c) {
  int32_t sum = 0;
  for (int j = 0; j < end; ++j) sum += __ldcg(&handle.scanCounts[static_cast<size_t>(j) * total + c]);
  return sum;
}

// 1. Positions: a block takes chunks of 256 of this rank's tokens from a ticket (thread = token),
// checks and normalises them into its meta, counts them into the handle's scratch and flags the
// chunk; then, once the chunks before it are flagged, writes each selection's position among all
// the rank's tokens. The wait needs no co-residency of the grid: a chunk goes only to a block that
// is running, so every earlier chunk belongs to a running block, which flags its chunk before it
// waits for anything (chunk 0 waits for none). Then the rank's counts and header go into its meta
// and it is announced: in the positions kernel by the last block to finish, which also clears the
// ticket and the flags for the next layout; in the fused kernel (`fused`) by the block that
// completes the last chunk (block 0 with no tokens), so that the blocks which go on to wait for the
// peers' meta never wait for a block that is not running yet (the scan part clears the flags).
// `shared`: [counter][kMaskWords] masks, then [counter] counts of the earlier chunks.
__device__ void writePositions(const DomainView& view, const GroupDims& dims, const LayoutInput& in,
                               const HandleDevice& handle, uint64_t* faultKey, uint8_t* shared, bool fused) {
  uint32_t* masks = reinterpret_cast<uint32_t*>(shared);
  __shared__ int chunkHere;
  __shared__ int stopped;   // gave up waiting for an earlier chunk: a failure is recorded
  __shared__ int announce;  // fused: this block completed the last chunk
  const Counters counters = countersOf(view, dims);
  const int total = counters.total();
  int32_t* earlier = reinterpret_cast<int32_t*>(masks + static_cast<size_t>(total) * kMaskWords);
  const int W = dims.metaWidth, L = dims.localExperts, domainExperts = L * view.localRanks;
  MetaSelection* meta = metaSelections(view, view.rank);
  MetaPosition* positions = metaPositions(view, view.rank);
  const int chunks = (in.numTokens + kThreads - 1) / kThreads;
  if (threadIdx.x == 0) {  // read after waitForPeers' barriers
    stopped = 0;
    announce = fused && chunks == 0 && blockIdx.x == 0;
  }
  const bool failed = !waitForPeers(view, kPhaseMetaRead, view.epochs->lastMeta);
  while (!failed) {
    if (threadIdx.x == 0) chunkHere = atomicAdd(&handle.layoutTickets[kTicketNextChunk], 1);
    for (int i = threadIdx.x; i < total * kMaskWords; i += blockDim.x) masks[i] = 0;
    __syncthreads();
    const int chunk = chunkHere;
    if (chunk >= chunks) break;
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
    int32_t* chunkCounts = handle.scanCounts + static_cast<size_t>(chunk) * total;
    for (int c = threadIdx.x; c < total; c += blockDim.x) {
      int32_t tokens = 0;
      for (int w = 0; w < kMaskWords; ++w) tokens += __popc(masks[c * kMaskWords + w]);
      chunkCounts[c] = tokens;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      __threadfence();
      storeReleaseGpu(&handle.chunkReady[chunk], 1);
    }
    // The earlier chunks' counts (a thread per chunk waits for its flag). The wait ends anyway on a
    // failure or after the timeout (recorded as this rank waiting for itself while its meta is made
    // ready): flags or a ticket left stale by a kernel that never finished must not hang it.
    for (int j = threadIdx.x; j < chunk; j += blockDim.x) {
      const uint64_t start = globalTimerNs();
      for (uint32_t spins = 0; loadAcquireGpu(&handle.chunkReady[j]) == 0; ++spins) {
        if (!timeToCheckErrors(spins)) continue;
        const bool late = globalTimerNs() - start > view.timeoutNs;
        if (late) raiseTimeout(view, view.localRank, kPhaseMetaReady, 1, 0);
        if (late || errorRaised(view)) {
          stopped = 1;
          break;
        }
      }
    }
    __syncthreads();
    if (stopped) break;
    for (int c = threadIdx.x; c < total; c += blockDim.x) earlier[c] = chunkCountsBelow(handle, chunk, total, c);
    __syncthreads();
    if (mine)
      for (int k = 0; k < W; ++k) {
        const int e = sel[k].expert;
        MetaPosition& p = positions[static_cast<size_t>(t) * W + k];
        if (e < 0) {
          p = MetaPosition{-1, -1, -1};
          continue;
        }
        const int r = counters.ofRank(e / L), x = counters.ofExpert(e), m = counters.ofDomain(e / domainExperts);
        p = MetaPosition{earlier[r] + tokensBefore(&masks[r * kMaskWords]),
                         earlier[x] + tokensBefore(&masks[x * kMaskWords]),
                         earlier[m] + tokensBefore(&masks[m * kMaskWords])};
      }
    __syncthreads();  // the masks, `earlier` and chunkHere are rewritten for the next chunk
    if (fused && threadIdx.x == 0) {
      __threadfence();  // this chunk's positions (and faults) before its count
      if (atomicAdd(&handle.layoutTickets[kTicketChunksDone], 1) == chunks - 1) announce = 1;
    }
  }
  bool announcing;
  if (fused) {
    __syncthreads();
    announcing = announce != 0 && !failed && !stopped;
    if (announcing && threadIdx.x == 0) __threadfence();  // every chunk's writes are visible here
    __syncthreads();
  } else {
    if (!lastBlockDone(&handle.layoutTickets[kTicketPublishDone])) return;
    // Every block is done with the chunk ticket and the flags.
    for (int j = threadIdx.x; j < chunks; j += blockDim.x) handle.chunkReady[j] = 0;
    if (threadIdx.x == 0) handle.layoutTickets[kTicketNextChunk] = 0;
    announcing = !failed && !stopped;
  }
  if (!announcing || blockErrorRaised(view)) return;
  int32_t* totals = metaCounts(view, view.rank);
  for (int c = threadIdx.x; c < total; c += blockDim.x) totals[c] = chunkCountsBelow(handle, chunks, total, c);
  __syncthreads();
  if (threadIdx.x != 0) return;
  writeMetaHeader(view, dims, in, faultKey);
  // With several domains the meta first crosses the network; the network stream signals.
  if (view.domains == 1) signalPeers(view, kPhaseMetaReady, callEpoch(view));
}

__global__ void __launch_bounds__(kThreads) positionsKernel(DomainView view, GroupDims dims, LayoutInput in,
                                                            HandleDevice handle, uint64_t* faultKey) {
  extern __shared__ __align__(16) uint8_t dynamicShared[];
  writePositions(view, dims, in, handle, faultKey, dynamicShared, /*fused=*/false);
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

// Counter `counter` of every source rank below `end`, summed. The loads are independent (each a
// peer's meta): unrolled, they travel together instead of one round trip per rank.
__device__ __forceinline__ int64_t countsBelow(const DomainView& view, int end, int counter) {
  int64_t sum = 0;
#pragma unroll 8
  for (int s = 0; s < end; ++s) sum += countOf(view, s, counter);
  return sum;
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
        const int64_t segment = countsBelow(view, R, counters.ofExpert(me * L + l));
        if (store) handle.segmentPairs[l] = segment;
        return (segment + handle.padMultiple - 1) / handle.padMultiple * handle.padMultiple;
      },
      [&](int l, int64_t start, int64_t paddedHere) {
        // A batch of counts loaded before the stores (which may alias them for the compiler).
        constexpr int kBatch = 8;
        int64_t within = 0;
        for (int s0 = 0; s0 < R; s0 += kBatch) {
          int32_t count[kBatch];
#pragma unroll
          for (int j = 0; j < kBatch; ++j) count[j] = s0 + j < R ? countOf(view, s0 + j, counters.ofExpert(me * L + l)) : 0;
#pragma unroll
          for (int j = 0; j < kBatch && s0 + j < R; ++j) {
            const size_t at = static_cast<size_t>(s0 + j) * L + l;
            o.rowBase[at] = start + within;
            if (store) handle.rowBase[at] = start + within;
            within += count[j];
          }
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
    o.routeBase[i] = countsBelow(view, source, counters.ofRank(destination));
  }
  if (store && threadIdx.x == 0) {
    writeReportedCounts(view, handle, pairs, padded);
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

// Selections [k0, k0 + kSelectionBatch) of a token and their positions (masked past W), loaded
// together: the loops below store between their reads, so the compiler would otherwise wait for
// one read per selection.
constexpr int kSelectionBatch = 8;

struct SelectionBatch {
  MetaSelection sel[kSelectionBatch];
  MetaPosition pos[kSelectionBatch];
};

__device__ __forceinline__ void loadSelections(const MetaSelection* sel, const MetaPosition* pos, int k0, int W,
                                               SelectionBatch* batch) {
#pragma unroll
  for (int j = 0; j < kSelectionBatch; ++j) {
    const bool inside = k0 + j < W;
    batch->sel[j] = inside ? sel[k0 + j] : MetaSelection{-1, -1, 0.0f};
    batch->pos[j] = inside && pos != nullptr ? pos[k0 + j] : MetaPosition{-1, -1, -1};
  }
}

// The first selection of a token whose expert's owner, expert / groupSize, is `group` (-1: none).
__device__ __forceinline__ int firstSelectionOf(const MetaSelection* sel, int W, int groupSize, int group) {
  for (int k0 = 0; k0 < W; k0 += kSelectionBatch) {
    SelectionBatch batch;
    loadSelections(sel, nullptr, k0, W, &batch);
#pragma unroll
    for (int j = 0; j < kSelectionBatch; ++j)
      if (batch.sel[j].expert >= 0 && batch.sel[j].expert / groupSize == group) return k0 + j;
  }
  return -1;
}

// The pair slot and rows here of source s's token t, if it selects an expert of this rank.
__device__ void placeReceived(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                              const ScanOffsets& o, int s, int t) {
  const int W = dims.metaWidth, L = dims.localExperts, me = view.rank;
  const MetaSelection* sel = metaSelections(view, s) + static_cast<size_t>(t) * W;
  const MetaPosition* pos = metaPositions(view, s) + static_cast<size_t>(t) * W;
  const int first = firstSelectionOf(sel, W, L, me);
  if (first < 0) return;
  const int64_t slot = o.pairBase[s] + pos[first].pair;
  const bool remote = s / view.localRanks != view.domain;
  // A source in another domain: its row in the rail peer's network receive slot for this domain.
  const int32_t netRow = remote ? pos[first].domain : -1;
  handle.recvPairs[slot] = RecvEntry{s, t, -1, netRow};
  MetaSelection* local = handle.pairSel + slot * W;
  for (int k0 = 0; k0 < W; k0 += kSelectionBatch) {
    SelectionBatch batch;
    loadSelections(sel, pos, k0, W, &batch);
#pragma unroll
    for (int j = 0; j < kSelectionBatch; ++j) {
      const int k = k0 + j;
      if (k >= W) break;
      const MetaSelection& g = batch.sel[j];
      const bool here = g.expert >= 0 && g.expert / L == me;
      local[k] = here ? MetaSelection{g.expert - me * L, g.slot, g.prob} : MetaSelection{-1, g.slot, 0.0f};
      if (!handle.expertMajor) continue;
      int32_t row = -1;
      if (here) {
        const int l = g.expert - me * L;
        const int64_t at = o.rowBase[static_cast<size_t>(s) * L + l] + batch.pos[j].row;
        if (handle.rowBudget < 0 || at < handle.rowBudget) {
          handle.recvRows[at] = RecvEntry{s, t, l, netRow};
          handle.recvRowProb[at] = g.prob;
          row = static_cast<int32_t>(at);
        }
      }
      handle.pairRows[slot * W + k] = row;
    }
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
      const int k = firstSelectionOf(sel, W, domainExperts, view.domain);
      if (k >= 0) relay = pos[k].domain;
    }
    if (!own && t < handle.numTokens) {
      const MetaSelection* sel = metaSelections(view, view.rank) + static_cast<size_t>(t) * W;
      const MetaPosition* pos = metaPositions(view, view.rank) + static_cast<size_t>(t) * W;
      const int k = firstSelectionOf(sel, W, domainExperts, origin);
      if (k >= 0) pack = pos[k].domain;
    }
    handle.relayIndex[at] = relay;
    handle.packIndex[at] = pack;
  }
  if (t >= tokens) return;
  const MetaSelection* sel = metaSelections(view, s) + static_cast<size_t>(t) * W;
  const MetaPosition* pos = metaPositions(view, s) + static_cast<size_t>(t) * W;
  // One selection: its pair at destination rank `owner` (pairIndex: among the token's
  // destinations of this domain, in rank order), written once per destination (`first`).
  int inDomain = 0;
  const auto route = [&](int k, int owner, bool first, int pairIndex, int32_t slot, int32_t pair) {
    const bool here = owner >= low && owner < low + D;
    if (here && first) {
      ++inDomain;
      const int j = owner - low;
      handle.routePairs[at * W + pairIndex] =
          SendPair{j, static_cast<int32_t>(o.routeBase[static_cast<size_t>(origin) * D + j] + pair)};
    }
    if (own)
      handle.ownSel[static_cast<size_t>(t) * W + k] = OwnSelection{pairIndex, slot, owner >= 0 ? owner / D : -1};
    else
      handle.routeSelPair[at * W + k] = pairIndex;
  };
  if (W <= kSelectionBatch) {
    // The usual width: the token's selections in registers, each read once.
    SelectionBatch batch;
    loadSelections(sel, pos, 0, W, &batch);
    int owner[kSelectionBatch];
    bool first[kSelectionBatch];
#pragma unroll
    for (int j = 0; j < kSelectionBatch; ++j) {
      owner[j] = batch.sel[j].expert >= 0 ? batch.sel[j].expert / L : -1;
      first[j] = owner[j] >= 0;
#pragma unroll
      for (int i = 0; i < j; ++i) first[j] = first[j] && owner[i] != owner[j];
    }
#pragma unroll
    for (int j = 0; j < kSelectionBatch; ++j) {
      if (j >= W) break;
      const bool here = owner[j] >= low && owner[j] < low + D;
      int pairIndex = 0;
#pragma unroll
      for (int i = 0; i < kSelectionBatch; ++i) pairIndex += first[i] && owner[i] >= low && owner[i] < owner[j];
      route(j, owner[j], first[j], here ? pairIndex : -1, batch.sel[j].slot, batch.pos[j].pair);
    }
  } else {
    for (int k = 0; k < W; ++k) {
      const int owner = sel[k].expert >= 0 ? sel[k].expert / L : -1;
      const bool here = owner >= low && owner < low + D;
      route(k, owner, firstOfGroup(sel, k, L), here ? groupsBetween(sel, W, L, low, owner) : -1, sel[k].slot,
            pos[k].pair);
    }
  }
  handle.routePairCount[at] = inDomain;
}

// The handle's counts, tokens per expert and (two-hop) network rows into the host copy, which the
// host reads once the layout's event has completed. A whole block, after every block is done.
__device__ void writeHostCounts(const DomainView& view, const GroupDims& dims, const HandleDevice& handle) {
  static_assert(sizeof(HandleCounts) % sizeof(int32_t) == 0, "HandleCounts is copied as words");
  constexpr int kWords = sizeof(HandleCounts) / sizeof(int32_t);
  const auto* counts = reinterpret_cast<const int32_t*>(handle.counts);
  auto* hostCounts = reinterpret_cast<int32_t*>(handle.hostCounts);
  for (int i = threadIdx.x; i < kWords; i += blockDim.x) hostCounts[i] = __ldcg(&counts[i]);
  for (int l = threadIdx.x; l < dims.localExperts; l += blockDim.x)
    handle.hostTokensPerExpert[l] = __ldcg(&handle.tokensPerExpert[l]);
  if (handle.hostNetRows != nullptr)
    for (int i = threadIdx.x; i < 2 * view.domains; i += blockDim.x) handle.hostNetRows[i] = __ldcg(&handle.netRows[i]);
  __threadfence_system();
}

// Block 0, once it has derived the counts: the host copy, then the layout's tag (after every
// thread's copy), so that the host reads the counts and enqueues the dispatch while the rows are
// still being placed. The last block copies them again at the end (the same values; the host
// copy of a layout that stopped before its counts: its fault or zeros).
__device__ void tagHostCounts(const DomainView& view, const GroupDims& dims, const HandleDevice& handle) {
  if (blockIdx.x != 0 || handle.countsTag == 0) return;
  writeHostCounts(view, dims, handle);
  __syncthreads();
  if (threadIdx.x != 0) return;
  __threadfence_system();
  *reinterpret_cast<volatile uint64_t*>(handle.hostCountsTag) = handle.countsTag;
}

// 2. The receive side and the routes of this rank, from the group's counts and positions. The
// fused kernel (`fused`) also clears the chunk ticket and flags of its positions step here, once
// every block is done. `shared`: the offsets (scanOffsetsWords int64).
__device__ void placeFromCounts(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                                uint8_t* shared, bool fused) {
  int64_t* offsetWords = reinterpret_cast<int64_t*>(shared);
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
    tagHostCounts(view, dims, handle);
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
        const int64_t pairs = countsBelow(view, R, countersOf(view, dims).ofExpert(view.rank * L + l));
        const int64_t end = min(o.segmentStart[l] + o.segmentKept[l], limit);
        for (int64_t row = o.segmentStart[l] + pairs + threadIdx.x; row < end; row += blockDim.x) {
          handle.recvRows[row] = RecvEntry{-1, -1, -1, -1};
          handle.recvRowProb[row] = 0.0f;
        }
      }
    }
  }
  if (!lastBlockDone(&handle.layoutTickets[kTicketScanDone])) return;
  if (fused) {
    const int chunks = (handle.numTokens + kThreads - 1) / kThreads;
    for (int j = threadIdx.x; j < chunks; j += blockDim.x) handle.chunkReady[j] = 0;
    if (threadIdx.x == 0) {
      handle.layoutTickets[kTicketNextChunk] = 0;
      handle.layoutTickets[kTicketChunksDone] = 0;
    }
  }
  writeHostCounts(view, dims, handle);
  // Every block has read the peers' meta: they may overwrite it in their next layout.
  if (threadIdx.x != 0 || errorRaised(view)) return;
  const uint64_t epoch = callEpoch(view);
  signalPeers(view, kPhaseMetaRead, epoch);
  view.epochs->lastMeta = epoch;
  view.epochs->current = epoch;
}

__global__ void __launch_bounds__(kThreads) countFirstScanKernel(DomainView view, GroupDims dims, HandleDevice handle) {
  extern __shared__ __align__(16) uint8_t dynamicShared[];
  // This layout's counts start from zero (block 0 alone writes them, in this order): a fault, a
  // timeout or a success each leaves counts of its own.
  if (blockIdx.x == 0 && threadIdx.x == 0) *handle.counts = HandleCounts{};
  placeFromCounts(view, dims, handle, dynamicShared, /*fused=*/false);
}

// Both steps in one kernel (NCCL_MOE_LAYOUT_ENGINE=2, one NVLink domain): between them every block
// waits for the peers' meta, as the scan kernel does at its start; the shared memory serves the
// masks first, the offsets after.
__global__ void __launch_bounds__(kThreads) countFirstFusedKernel(DomainView view, GroupDims dims, LayoutInput in,
                                                                  HandleDevice handle, uint64_t* faultKey) {
  extern __shared__ __align__(16) uint8_t dynamicShared[];
  if (blockIdx.x == 0 && threadIdx.x == 0) *handle.counts = HandleCounts{};
  writePositions(view, dims, in, handle, faultKey, dynamicShared, /*fused=*/true);
  __syncthreads();  // the masks are done with before the offsets take their place
  placeFromCounts(view, dims, handle, dynamicShared, /*fused=*/true);
}

}  // namespace

namespace {

size_t positionsSharedBytes(const DomainView& view, const GroupDims& dims) {
  const size_t counters = static_cast<size_t>(view.ranks) + dims.experts + view.domains;
  return counters * kMaskWords * sizeof(uint32_t) + counters * sizeof(int32_t);
}

size_t scanSharedBytes(const DomainView& view, const GroupDims& dims) {
  return scanOffsetsWords(view.ranks, dims.localExperts, view.domains, view.localRanks) * sizeof(int64_t);
}

int64_t scanUnits(const DomainView& view, const GroupDims& dims) {
  return static_cast<int64_t>(std::max(view.ranks, view.domains)) * dims.maxTokens;
}

}  // namespace

cudaError_t launchCountFirstPublish(const DomainView& view, const GroupDims& dims, const LayoutInput& input,
                                    const HandleDevice& handle, uint64_t* faultKey, LaunchBudget budget,
                                    cudaStream_t stream) {
  discardEarlierLaunchError();
  const size_t sharedBytes = positionsSharedBytes(view, dims);
  if (cudaError_t err = allowSharedBytes(positionsKernel, sharedBytes); err != cudaSuccess) return err;
  positionsKernel<<<cappedGrid(input.numTokens, kThreads, budget), kThreads, sharedBytes, stream>>>(view, dims, input,
                                                                                                   handle, faultKey);
  return cudaGetLastError();
}

cudaError_t launchCountFirstScan(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                                 LaunchBudget budget, cudaStream_t stream) {
  discardEarlierLaunchError();
  const size_t offsetBytes = scanSharedBytes(view, dims);
  if (cudaError_t err = allowSharedBytes(countFirstScanKernel, offsetBytes); err != cudaSuccess) return err;
  countFirstScanKernel<<<cappedGrid(scanUnits(view, dims), kThreads, budget), kThreads, offsetBytes, stream>>>(
      view, dims, handle);
  return cudaGetLastError();
}

cudaError_t launchCountFirstFused(const DomainView& view, const GroupDims& dims, const LayoutInput& input,
                                  const HandleDevice& handle, uint64_t* faultKey, LaunchBudget budget,
                                  cudaStream_t stream) {
  discardEarlierLaunchError();
  const size_t sharedBytes = std::max(positionsSharedBytes(view, dims), scanSharedBytes(view, dims));
  if (cudaError_t err = allowSharedBytes(countFirstFusedKernel, sharedBytes); err != cudaSuccess) return err;
  const int64_t units = std::max<int64_t>(input.numTokens, scanUnits(view, dims));
  countFirstFusedKernel<<<cappedGrid(units, kThreads, budget), kThreads, sharedBytes, stream>>>(view, dims, input,
                                                                                                handle, faultKey);
  return cudaGetLastError();
}

}  // namespace nccl_moe
