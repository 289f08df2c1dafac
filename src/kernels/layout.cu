// Layout of one call, entirely on the device (no host round trip):
//   1. publish   every rank checks its routing and writes it, normalised, to its meta slot; with
//                several domains the slot then travels to the rail peers (transport/rail_exchange)
//                and the arrival is signalled from the network stream;
//   2. count     every rank reads all ranks' meta (its domain peers hold the other domains' copies)
//                and counts tokens per (source, expert) and (source, destination rank);
//   3. offsets   segment starts, padding, budget, the counts the API reports;
//   4. scans     pair slots and expert-major rows received here (canonical order of
//                reference/layout.h), the routes this rank serves (its own tokens inside its domain,
//                and its rail peers' tokens for this domain) and the network pack orders;
//   5. finish    tell the peers their meta was read.
// Every rank derives the same numbers from the same meta, so no counts need to be exchanged.
#include "kernels/layout_meta.cuh"
#include "misc/launch_error.h"

namespace nccl_moe {

namespace {

using namespace layout_meta;
using BlockScan = cub::BlockScan<int, kThreads>;

// 1. Normalise and check this rank's routing into its own meta region (one thread per token).
__global__ void __launch_bounds__(kThreads) publishMetaKernel(DomainView view, GroupDims dims,
                                                              LayoutInput in, uint64_t* faultKey) {
  if (!waitForPeers(view, kPhaseMetaRead, view.epochs->lastMeta)) return;
  MetaSelection* meta = metaSelections(view, view.rank);
  for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < in.numTokens; t += gridDim.x * blockDim.x) {
    const uint64_t fault = normaliseToken(dims, in, t, meta + static_cast<size_t>(t) * dims.metaWidth);
    if (fault != ~0ull) atomicMin(reinterpret_cast<unsigned long long*>(faultKey), fault);
  }
}

// Fills the meta header (with the first fault, its value re-read from the input) and announces it.
__global__ void finishMetaKernel(DomainView view, GroupDims dims, LayoutInput in, uint64_t* faultKey) {
  if (threadIdx.x != 0 || errorRaised(view)) return;
  writeMetaHeader(view, dims, in, faultKey);
  // With several domains the meta first crosses the network; the network stream signals.
  if (view.domains == 1) signalPeers(view, kPhaseMetaReady, callEpoch(view));
}

// 2. Count (source, expert) selections and (source, destination rank) token hits over the whole
// group.
__global__ void __launch_bounds__(kThreads) countKernel(DomainView view, GroupDims dims, HandleDevice handle) {
  if (!waitForPeers(view, kPhaseMetaReady, callEpoch(view))) return;
  if (groupFault(view, handle)) return;
  const int width = dims.metaWidth;
  const int L = dims.localExperts;
  for (int s = 0; s < view.ranks; ++s) {
    const int tokens = metaHeader(view, s)->numTokens;
    const MetaSelection* meta = metaSelections(view, s);
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < tokens; t += gridDim.x * blockDim.x) {
      const MetaSelection* sel = meta + static_cast<size_t>(t) * width;
      for (int k = 0; k < width; ++k) {
        const int e = sel[k].expert;
        if (e < 0) continue;
        atomicAdd(&handle.groupCounts[static_cast<size_t>(s) * dims.experts + e], 1);
        if (firstOfGroup(sel, k, L)) atomicAdd(&handle.groupHits[static_cast<size_t>(s) * view.ranks + e / L], 1);
      }
    }
  }
}

// 3. Offsets, padding, budget and the reported counts of this rank (one block).
__global__ void __launch_bounds__(kThreads) offsetsKernel(DomainView view, GroupDims dims, HandleDevice handle) {
  if (blockErrorRaised(view) || handle.counts->fault) return;
  const int R = view.ranks, L = dims.localExperts, me = view.rank;
  // Pair slots: by source rank.
  const int64_t pairs = blockExclusiveScan(
      R, [&](int s) { return static_cast<int64_t>(handle.groupHits[static_cast<size_t>(s) * R + me]); },
      [&](int s, int64_t prefix, int64_t) { handle.pairBase[s] = prefix; });
  // Expert-major segments: per local expert, its rows of every source in source order, padded;
  // a budget keeps the rows before it.
  const int64_t padded = blockExclusiveScan(
      L,
      [&](int l) {
        int64_t segment = 0;
        for (int src = 0; src < R; ++src) segment += handle.groupCounts[static_cast<size_t>(src) * dims.experts + me * L + l];
        handle.segmentPairs[l] = segment;
        return (segment + handle.padMultiple - 1) / handle.padMultiple * handle.padMultiple;
      },
      [&](int l, int64_t start, int64_t paddedHere) {
        int64_t within = 0;
        for (int src = 0; src < R; ++src) {
          handle.rowBase[static_cast<size_t>(src) * L + l] = start + within;
          within += handle.groupCounts[static_cast<size_t>(src) * dims.experts + me * L + l];
        }
        int64_t keptHere = paddedHere;
        if (handle.rowBudget >= 0) keptHere = max(int64_t{0}, min(paddedHere, handle.rowBudget - start));
        handle.segmentStart[l] = start;
        handle.segmentKept[l] = keptHere;
        handle.tokensPerExpert[l] = handle.expertMajor ? keptHere : handle.segmentPairs[l];
      });
  if (threadIdx.x == 0) writeReportedCounts(view, handle, pairs, padded);
}

// Runs `visit(t, position)` for every token t < tokens of which `flag(t)` holds, in token order,
// with position = its rank among those tokens plus `base` (a block-wide scan over chunks). Returns
// the number of such tokens (in every thread).
template <class Flag, class Visit>
__device__ int64_t scanTokens(int tokens, int64_t base, Flag flag, Visit visit) {
  __shared__ typename BlockScan::TempStorage scratch;
  __shared__ int chunkTotal;
  const int64_t start = base;
  for (int first = 0; first < tokens; first += kThreads) {
    const int t = first + threadIdx.x;
    const int hit = t < tokens && flag(t) ? 1 : 0;
    int offset = 0, total = 0;
    BlockScan(scratch).ExclusiveSum(hit, offset, total);
    if (threadIdx.x == 0) chunkTotal = total;
    if (hit) visit(t, base + offset);
    __syncthreads();
    base += chunkTotal;
    __syncthreads();
  }
  return base - start;
}

// Receive-side scans (4a-4c) run spread over the grid: a job scans the tokens of each of its items
// (a source rank, a (source, expert), an (origin, destination)) in token order, in chunks of
// kThreads tokens. chunkCountsKernel counts every chunk's hits; chunkScanKernel adds the counts of
// the item's earlier chunks to the item's base and scans its own chunk. A job provides:
//   int items(); int tokens(item); int64_t base(item) (called by one thread per chunk);
//   void prepare(item, t) (every t < tokens(item), in the count pass, before any visit);
//   bool flag(item, t); void visit(item, t, position).
template <class Job>
__global__ void __launch_bounds__(kThreads) chunkCountsKernel(Job job, int chunksPerItem, int32_t* counts) {
  if (blockErrorRaised(job.view) || job.handle.counts->fault) return;
  const int64_t units = static_cast<int64_t>(job.items()) * chunksPerItem;
  for (int64_t unit = blockIdx.x; unit < units; unit += gridDim.x) {
    const int item = static_cast<int>(unit / chunksPerItem), t = static_cast<int>(unit % chunksPerItem) * kThreads + threadIdx.x;
    const bool inside = t < job.tokens(item);
    if (inside) job.prepare(item, t);
    const int hits = __syncthreads_count(inside && job.flag(item, t));
    if (threadIdx.x == 0) counts[unit] = hits;
  }
}

template <class Job>
__global__ void __launch_bounds__(kThreads) chunkScanKernel(Job job, int chunksPerItem, const int32_t* counts) {
  if (blockErrorRaised(job.view) || job.handle.counts->fault) return;
  __shared__ typename BlockScan::TempStorage scratch;
  __shared__ unsigned long long before;
  const int64_t units = static_cast<int64_t>(job.items()) * chunksPerItem;
  for (int64_t unit = blockIdx.x; unit < units; unit += gridDim.x) {
    const int item = static_cast<int>(unit / chunksPerItem), chunk = static_cast<int>(unit % chunksPerItem);
    const int tokens = job.tokens(item);
    if (chunk * kThreads >= tokens) continue;  // (the same in every thread)
    if (threadIdx.x == 0) before = static_cast<unsigned long long>(job.base(item));
    __syncthreads();
    for (int c = threadIdx.x; c < chunk; c += blockDim.x) atomicAdd(&before, static_cast<unsigned long long>(counts[unit - chunk + c]));
    __syncthreads();
    const int t = chunk * kThreads + threadIdx.x;
    const int hit = t < tokens && job.flag(item, t) ? 1 : 0;
    int offset = 0;
    BlockScan(scratch).ExclusiveSum(hit, offset);
    if (hit) job.visit(item, t, static_cast<int64_t>(before) + offset);
    __syncthreads();  // `before` and `scratch` are reused by the next unit
  }
}

// The same scan with one block per item, its chunks in turn: for jobs with items enough to fill the
// grid (every (source, expert) of the expert-major rows), where chunking would only add passes.
template <class Job>
__global__ void __launch_bounds__(kThreads) itemScanKernel(Job job) {
  if (blockErrorRaised(job.view) || job.handle.counts->fault) return;
  for (int item = blockIdx.x; item < job.items(); item += gridDim.x) {
    const int tokens = job.tokens(item);
    for (int t = threadIdx.x; t < tokens; t += blockDim.x) job.prepare(item, t);
    __syncthreads();
    scanTokens(
        tokens, job.base(item), [&](int t) { return job.flag(item, t); },
        [&](int t, int64_t position) { job.visit(item, t, position); });
  }
}

// The fields every job carries.
struct ScanJobBase {
  DomainView view;
  GroupDims dims;
  HandleDevice handle;
  __device__ const MetaSelection* selections(int rank, int t) const {
    return metaSelections(view, rank) + static_cast<size_t>(t) * dims.metaWidth;
  }
};

// 4a. Two-hop: the row of a source in another domain in its rail peer's pack for this domain (the
// rail peer here packs its tokens for this domain in token order).
struct NetIndexJob : ScanJobBase {
  __device__ int items() const { return view.ranks; }
  __device__ int tokens(int s) const { return s / view.localRanks != view.domain ? metaHeader(view, s)->numTokens : 0; }
  __device__ int64_t base(int) const { return 0; }
  __device__ void prepare(int, int) const {}
  __device__ bool flag(int s, int t) const {
    return tokenHitsGroup(selections(s, t), dims.metaWidth, dims.localExperts * view.localRanks, view.domain);
  }
  __device__ void visit(int s, int t, int64_t row) const {
    handle.netIndex[static_cast<size_t>(s) * dims.maxTokens + t] = static_cast<int32_t>(row);
  }
};

// 4b. Pair slots received here, by source rank then token; with the pair's routing restricted to
// this rank's experts.
struct RecvPairsJob : ScanJobBase {
  __device__ int items() const { return view.ranks; }
  __device__ int tokens(int s) const { return metaHeader(view, s)->numTokens; }
  __device__ int64_t base(int s) const { return handle.pairBase[s]; }
  __device__ void prepare(int s, int t) const { handle.tokenSlot[static_cast<size_t>(s) * dims.maxTokens + t] = -1; }
  __device__ bool flag(int s, int t) const { return tokenHitsGroup(selections(s, t), dims.metaWidth, dims.localExperts, view.rank); }
  __device__ void visit(int s, int t, int64_t slot) const {
    const int width = dims.metaWidth, L = dims.localExperts, me = view.rank;
    const bool remote = s / view.localRanks != view.domain;
    handle.tokenSlot[static_cast<size_t>(s) * dims.maxTokens + t] = static_cast<int32_t>(slot);
    handle.recvPairs[slot] =
        RecvEntry{s, t, -1, remote ? handle.netIndex[static_cast<size_t>(s) * dims.maxTokens + t] : -1};
    const MetaSelection* sel = selections(s, t);
    MetaSelection* local = handle.pairSel + slot * width;
    for (int k = 0; k < width; ++k) {
      const bool mine = sel[k].expert >= 0 && sel[k].expert / L == me;
      local[k] = mine ? MetaSelection{sel[k].expert - me * L, sel[k].slot, sel[k].prob} : MetaSelection{-1, sel[k].slot, 0.0f};
    }
  }
};

// 4c. Expert-major rows received here, per (source rank, local expert); rows past the budget are
// dropped.
struct RecvRowsJob : ScanJobBase {
  __device__ int items() const { return view.ranks * dims.localExperts; }
  __device__ int tokens(int item) const { return metaHeader(view, item / dims.localExperts)->numTokens; }
  __device__ int64_t base(int item) const { return handle.rowBase[item]; }  // [s][L]
  __device__ void prepare(int, int) const {}
  __device__ bool flag(int item, int t) const {
    const int e = view.rank * dims.localExperts + item % dims.localExperts;
    const MetaSelection* sel = selections(item / dims.localExperts, t);
    for (int k = 0; k < dims.metaWidth; ++k)
      if (sel[k].expert == e) return true;
    return false;
  }
  __device__ void visit(int item, int t, int64_t row) const {
    if (handle.rowBudget >= 0 && row >= handle.rowBudget) return;
    const int s = item / dims.localExperts, l = item % dims.localExperts, e = view.rank * dims.localExperts + l;
    const int32_t slot = handle.tokenSlot[static_cast<size_t>(s) * dims.maxTokens + t];
    const MetaSelection* sel = selections(s, t);
    for (int k = 0; k < dims.metaWidth; ++k) {
      if (sel[k].expert != e) continue;
      handle.recvRows[row] = RecvEntry{s, t, l, handle.recvPairs[slot].netRow};
      handle.recvRowProb[row] = sel[k].prob;
      handle.pairRows[static_cast<int64_t>(slot) * dims.metaWidth + k] = static_cast<int32_t>(row);
    }
  }
};

// The padding rows of each expert-major segment (one block per local expert).
__global__ void __launch_bounds__(kThreads) paddingRowsKernel(DomainView view, GroupDims dims, HandleDevice handle) {
  if (blockErrorRaised(view) || handle.counts->fault) return;
  const int64_t limit = handle.rowBudget >= 0 ? handle.rowBudget : INT64_MAX;
  for (int l = blockIdx.x; l < dims.localExperts; l += gridDim.x) {
    const int64_t first = handle.segmentStart[l] + handle.segmentPairs[l];
    const int64_t end = min(handle.segmentStart[l] + handle.segmentKept[l], limit);
    for (int64_t row = first + threadIdx.x; row < end; row += blockDim.x) {
      handle.recvRows[row] = RecvEntry{-1, -1, -1, -1};
      handle.recvRowProb[row] = 0.0f;
    }
  }
}

// 4d. Pair slots at every destination of this domain of the tokens this rank routes, per (origin,
// destination). A token's pairs are stored in destination order (the order combine sums in).
struct RoutePairsJob : ScanJobBase {
  __device__ int items() const { return view.domains * view.localRanks; }
  __device__ int tokens(int item) const { return metaHeader(view, routeSource(view, item / view.localRanks))->numTokens; }
  __device__ int64_t base(int item) const {  // pairs of lower source ranks at the destination
    const int s = routeSource(view, item / view.localRanks), d = view.domain * view.localRanks + item % view.localRanks;
    int64_t pairs = 0;
    for (int below = 0; below < s; ++below) pairs += handle.groupHits[static_cast<size_t>(below) * view.ranks + d];
    return pairs;
  }
  __device__ void prepare(int, int) const {}
  __device__ bool flag(int item, int t) const {
    const int s = routeSource(view, item / view.localRanks), d = view.domain * view.localRanks + item % view.localRanks;
    return tokenHitsGroup(selections(s, t), dims.metaWidth, dims.localExperts, d);
  }
  __device__ void visit(int item, int t, int64_t slot) const {
    const int origin = item / view.localRanks, j = item % view.localRanks, D = view.localRanks;
    const int s = routeSource(view, origin), d = view.domain * D + j;
    const int index = groupsBetween(selections(s, t), dims.metaWidth, dims.localExperts, view.domain * D, d);
    handle.routePairs[(static_cast<size_t>(origin) * dims.maxTokens + t) * dims.metaWidth + index] =
        SendPair{j, static_cast<int32_t>(slot)};
  }
};

// 4d. Per routed token (one thread each, over every origin): its pairs in this domain and which
// pair carries each selection. The handle keeps all of it: the meta is overwritten by the next
// layout, but combine (and its probs gradient) may come much later (the backward pass).
__global__ void __launch_bounds__(kThreads) routeSelectionsKernel(DomainView view, GroupDims dims, HandleDevice handle) {
  if (blockErrorRaised(view) || handle.counts->fault) return;
  const int width = dims.metaWidth, L = dims.localExperts, D = view.localRanks, T = dims.maxTokens;
  const int low = view.domain * D;  // first rank of this domain
  const int64_t items = static_cast<int64_t>(view.domains) * T;
  for (int64_t item = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; item < items;
       item += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int origin = static_cast<int>(item / T), t = static_cast<int>(item % T);
    const int s = routeSource(view, origin);
    const int tokens = metaHeader(view, s)->numTokens;
    if (t == 0) handle.routeTokens[origin] = tokens;
    if (t >= tokens) continue;
    const bool own = origin == view.domain;
    const size_t first = static_cast<size_t>(origin) * T;
    const MetaSelection* sel = metaSelections(view, s) + static_cast<size_t>(t) * width;
    int inDomain = 0;
    for (int k = 0; k < width; ++k) {
      const int owner = sel[k].expert >= 0 ? sel[k].expert / L : -1;
      const bool here = owner >= low && owner < low + D;
      const int pairIndex = here ? groupsBetween(sel, width, L, low, owner) : -1;
      inDomain += here && firstOfGroup(sel, k, L);
      if (own)
        handle.ownSel[static_cast<size_t>(t) * width + k] = OwnSelection{pairIndex, sel[k].slot, owner >= 0 ? owner / D : -1};
      else
        handle.routeSelPair[(first + t) * width + k] = pairIndex;
    }
    handle.routePairCount[first + t] = inDomain;
  }
}

// 4e. Two-hop, per other domain (one block each): the network pack orders and row counts. The rail
// peer's tokens for this domain arrive packed in token order; this rank's tokens for that domain
// leave packed in token order.
__global__ void __launch_bounds__(kThreads) routeScansKernel(DomainView view, GroupDims dims, HandleDevice handle) {
  if (blockErrorRaised(view) || handle.counts->fault) return;
  const int width = dims.metaWidth, domainExperts = dims.localExperts * view.localRanks;
  for (int origin = blockIdx.x; origin < view.domains; origin += gridDim.x) {
    if (origin == view.domain) {
      if (threadIdx.x == 0) handle.netRows[origin] = handle.netRows[view.domains + origin] = 0;
      continue;
    }
    const int s = routeSource(view, origin);
    const int tokens = metaHeader(view, s)->numTokens;
    const MetaSelection* meta = metaSelections(view, s);
    const size_t first = static_cast<size_t>(origin) * dims.maxTokens;
    for (int t = threadIdx.x; t < dims.maxTokens; t += blockDim.x) {
      handle.relayIndex[first + t] = -1;
      handle.packIndex[first + t] = -1;
    }
    __syncthreads();
    const int64_t relayed = scanTokens(
        tokens, 0,
        [&](int t) { return tokenHitsGroup(meta + static_cast<size_t>(t) * width, width, domainExperts, view.domain); },
        [&](int t, int64_t row) { handle.relayIndex[first + t] = static_cast<int32_t>(row); });
    const MetaSelection* mine = metaSelections(view, view.rank);
    const int64_t packed = scanTokens(
        handle.numTokens, 0,
        [&](int t) { return tokenHitsGroup(mine + static_cast<size_t>(t) * width, width, domainExperts, origin); },
        [&](int t, int64_t row) { handle.packIndex[first + t] = static_cast<int32_t>(row); });
    if (threadIdx.x == 0) {
      handle.netRows[origin] = static_cast<int32_t>(packed);
      handle.netRows[view.domains + origin] = static_cast<int32_t>(relayed);
    }
  }
}

// 5. The peers' meta has been read: they may overwrite it in their next layout.
__global__ void finishLayoutKernel(DomainView view) {
  if (threadIdx.x != 0 || errorRaised(view)) return;
  const uint64_t epoch = callEpoch(view);
  signalPeers(view, kPhaseMetaRead, epoch);
  view.epochs->lastMeta = epoch;
  view.epochs->current = epoch;
}

}  // namespace

cudaError_t launchLayoutPublish(const DomainView& view, const GroupDims& dims, const LayoutInput& input,
                                const HandleDevice& handle, uint64_t* faultKey, LaunchBudget budget,
                                cudaStream_t stream) {
  discardEarlierLaunchError();
  const size_t R = view.ranks;
  cudaError_t err = cudaMemsetAsync(handle.groupCounts, 0, R * dims.experts * sizeof(int32_t), stream);
  if (err == cudaSuccess) err = cudaMemsetAsync(handle.groupHits, 0, R * R * sizeof(int32_t), stream);
  if (err == cudaSuccess && handle.expertMajor)
    err = cudaMemsetAsync(handle.pairRows, 0xFF, handle.pairCapacity * dims.metaWidth * sizeof(int32_t), stream);
  if (err == cudaSuccess) err = cudaMemsetAsync(handle.counts, 0, sizeof(HandleCounts), stream);
  if (err != cudaSuccess) return err;

  publishMetaKernel<<<cappedGrid(input.numTokens, kThreads, budget), kThreads, 0, stream>>>(view, dims, input, faultKey);
  finishMetaKernel<<<1, 32, 0, stream>>>(view, dims, input, faultKey);
  return cudaGetLastError();
}

cudaError_t launchLayoutScan(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                             LaunchBudget budget, cudaStream_t stream) {
  discardEarlierLaunchError();
  countKernel<<<cappedGrid(static_cast<int64_t>(dims.maxTokens) * view.ranks, kThreads, budget), kThreads, 0, stream>>>(view, dims, handle);
  offsetsKernel<<<1, kThreads, 0, stream>>>(view, dims, handle);
  // Receive-side scans, each spread over the grid in chunks of kThreads tokens (counts first).
  const int chunksPerItem = (dims.maxTokens + kLayoutScanChunk - 1) / kLayoutScanChunk;
  auto scan = [&](auto job, int items) {
    const int grid = cappedGrid(static_cast<int64_t>(items) * chunksPerItem, 1, budget);
    chunkCountsKernel<<<grid, kThreads, 0, stream>>>(job, chunksPerItem, handle.scanCounts);
    chunkScanKernel<<<grid, kThreads, 0, stream>>>(job, chunksPerItem, handle.scanCounts);
  };
  const ScanJobBase fields{view, dims, handle};
  if (view.domains > 1) scan(NetIndexJob{fields}, view.ranks);
  scan(RecvPairsJob{fields}, view.ranks);
  if (handle.expertMajor) {
    itemScanKernel<<<cappedGrid(static_cast<int64_t>(view.ranks) * dims.localExperts, 1, budget), kThreads, 0, stream>>>(
        RecvRowsJob{fields});
    paddingRowsKernel<<<cappedGrid(dims.localExperts, 1, budget), kThreads, 0, stream>>>(view, dims, handle);
  }
  scan(RoutePairsJob{fields}, view.domains * view.localRanks);
  routeSelectionsKernel<<<cappedGrid(static_cast<int64_t>(view.domains) * dims.maxTokens, kThreads, budget), kThreads, 0,
                          stream>>>(view, dims, handle);
  if (view.domains > 1) routeScansKernel<<<cappedGrid(view.domains, 1, budget), kThreads, 0, stream>>>(view, dims, handle);
  finishLayoutKernel<<<1, 32, 0, stream>>>(view);
  return cudaGetLastError();
}

}  // namespace nccl_moe
