// Combine inside an NVLink domain, mirror of dispatch: every rank reduces its received rows of each
// (source token) pair into one partial (float32, rows in ascending order, rounded to the row type)
// in its peer-visible buffer; every source then pulls its tokens' partials in destination-rank
// order and sums them in float32: the canonical order of reference/reference.h.
// With several domains (two-hop) the rank partials of a token are first summed per domain: by the
// source's rail peer for another domain (its domain partial crosses the network once, with the
// probs gradients of the selections there), by the source itself for its own domain; the source
// then sums its domain partials in domain order (CombineOrder{D} of the reference). The domain
// partials that cross the network are written one chunk per launch, so that each network chunk
// leaves while the next is summed.
#include <algorithm>

#include "misc/launch_error.h"
#include "transport/device_sync.cuh"
#include "kernels/launch.h"
#include "kernels/row_ops.cuh"
#include "kernels/window_ranges.h"

namespace nccl_moe {

namespace {

constexpr int kThreads = 512;
constexpr int kWarpsPerBlock = kThreads / kWarp;

__device__ __forceinline__ size_t rowBytesOf(const GroupDims& dims) {
  return static_cast<size_t>(dims.hidden) * elementSize(dims.rowType);
}

// The partial of pair slot j (received here) into dst, and its probs gradients into this rank's
// peer-visible buffer (one warp). order: shared scratch of metaWidth entries for this warp.
__device__ void stagePair(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                          const CombineBuffers& in, int32_t* order, int64_t j, uint8_t* dst) {
  const int W = dims.metaWidth, lane = laneId();
  const size_t rowBytes = rowBytesOf(dims);
  if (!handle.expertMajor) {
    if (!in.xInBuffer) warpCopyBytes(dst, static_cast<const uint8_t*>(in.x) + j * rowBytes, rowBytes);
  } else {
    // The pair's rows in ascending order (= local expert order), by repeated minimum.
    int count = 0;
    if (lane == 0) {
      int32_t previous = -1;
      for (;;) {
        int32_t next = INT32_MAX;
        for (int k = 0; k < W; ++k) {
          const int32_t row = handle.pairRows[j * W + k];
          if (row > previous && row < next) next = row;
        }
        if (next == INT32_MAX) break;
        order[count++] = next;
        previous = next;
      }
    }
    count = __shfl_sync(0xFFFFFFFFu, count, 0);
    __syncwarp();
    const auto* rows = static_cast<const uint8_t*>(in.x);
    warpSumRows(count, [&](int i) { return rows + static_cast<size_t>(order[i]) * rowBytes; }, dims.hidden,
                dims.rowType, dst);
    __syncwarp();
  }
  if (in.probsGrad) {
    auto* partialProbs = reinterpret_cast<float*>(view.peerBuffers[view.localRank] + view.layout.combineProbs);
    const MetaSelection* sel = handle.pairSel + j * W;
    for (int k = lane; k < W; k += kWarp) {
      float grad = 0.0f;
      if (handle.expertMajor) {
        const int32_t row = handle.pairRows[j * W + k];
        if (row >= 0) grad = in.probsGrad[row];
      } else if (sel[k].expert >= 0) {
        grad = handle.routingFormat == static_cast<int>(RoutingFormat::kTopk)
                   ? in.probsGrad[j * in.topk + k]
                   : in.probsGrad[j * dims.localExperts + sel[k].expert];
      }
      partialProbs[j * W + k] = grad;
    }
  }
}

// Partials of the pairs received here, into this rank's peer-visible buffer at their pair slot
// (one warp per pair). sortedRows: shared scratch of metaWidth entries per warp.
__device__ void stagePartials(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                              const CombineBuffers& in, int32_t* sortedRows) {
  uint8_t* partials = view.peerBuffers[view.localRank] + view.layout.combineRows;
  int32_t* order = sortedRows + warpInBlock() * dims.metaWidth;
  const int64_t pairs = handle.counts->recvPairs;
  for (int64_t j = globalWarp(); j < pairs; j += warpsInGrid())
    stagePair(view, dims, handle, in, order, j, partials + j * rowBytesOf(dims));
}

// Dispatch's probs gradient of token t in the routing's format: selection k's value is gradOf(k)
// for a selection that has one (hasGrad(k)); unselected slots are 0.
template <class HasGrad, class GradOf>
__device__ void writeTokenProbsGrad(const GroupDims& dims, const HandleDevice& handle, const CombineBuffers& out,
                                    int64_t t, HasGrad hasGrad, GradOf gradOf) {
  const int W = dims.metaWidth, lane = laneId();
  const OwnSelection* own = handle.ownSel + t * W;
  const bool topk = handle.routingFormat == static_cast<int>(RoutingFormat::kTopk);
  float* grads = out.outProbsGrad + t * (topk ? out.topk : dims.experts);
  if (!topk)
    for (int e = lane; e < dims.experts; e += kWarp) grads[e] = 0.0f;
  __syncwarp();
  for (int k = lane; k < (topk ? out.topk : W); k += kWarp) {
    const bool has = hasGrad(k);
    const float grad = has ? gradOf(k) : 0.0f;
    if (topk)
      grads[k] = grad;
    else if (has)
      grads[own[k].slot] = grad;
  }
}

// Token t of this rank: its partials (partialOf(pair)) summed in destination-rank order, and its
// probs gradients (one warp).
template <class PartialOf>
__device__ void reduceToken(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                            const CombineBuffers& out, int64_t t, PartialOf partialOf) {
  const int W = dims.metaWidth;
  const SendPair* pairs = handle.sendPairs + t * W;
  const int count = handle.sendPairCount[t];
  uint8_t* dst = static_cast<uint8_t*>(out.out) + t * rowBytesOf(dims);
  warpSumRows(count, [&](int i) { return partialOf(pairs[i]); }, dims.hidden, dims.rowType, dst);
  if (out.outProbsGrad) {
    const OwnSelection* own = handle.ownSel + t * W;
    writeTokenProbsGrad(
        dims, handle, out, t, [&](int k) { return own[k].pairIndex >= 0; },
        [&](int k) {
          const SendPair pair = pairs[own[k].pairIndex];
          const auto* probs = reinterpret_cast<const float*>(view.peerBuffers[pair.dstRank] + view.layout.combineProbs);
          return probs[static_cast<size_t>(pair.slot) * W + k];
        });
  }
}

// Each of this rank's tokens: sum its partials in destination-rank order (one warp per token).
__device__ void reducePartials(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                               const CombineBuffers& out) {
  const size_t rowBytes = rowBytesOf(dims);
  for (int64_t t = globalWarp(); t < handle.numTokens; t += warpsInGrid())
    reduceToken(view, dims, handle, out, t, [&](const SendPair& pair) {
      return view.peerBuffers[pair.dstRank] + view.layout.combineRows + static_cast<size_t>(pair.slot) * rowBytes;
    });
}

// The call's end, in the grid's last block: the epoch advances (after telling the peers that their
// partials were read, where this kernel read them). With releaseInputs the block also waits until
// every domain peer has read this rank's partials, which the caller may then overwrite (zero-copy
// inputs).
__device__ void closeCombine(const DomainView& view, const CombineBuffers& buffers, uint64_t epoch,
                             bool signalPartialsRead) {
  const bool last = isLastBlock(view.epochs);
  if (last && threadIdx.x == 0) {
    // Every block is past its windows (windowed combine): their counters start at zero next call.
    view.epochs->windowBlocks[0] = view.epochs->windowBlocks[1] = 0;
    if (signalPartialsRead) signalPeers(view, kPhasePartialsRead, epoch);
    view.epochs->lastPartials = epoch;
    view.epochs->current = epoch;
  }
  if (last && buffers.releaseInputs) waitForPeers(view, kPhasePartialsRead, epoch);
}

// The start of a one-domain combine kernel: after a routing fault nothing moves on any rank and
// the call ends here (false); else the peers must be done with this rank's partials of the
// previous combine before they are overwritten (false: that wait failed).
__device__ bool openCombine(const DomainView& view, const HandleDevice& handle) {
  if (handle.counts->fault) {
    if (blockIdx.x == 0 && threadIdx.x == 0) view.epochs->current += 1;
    return false;
  }
  return waitForPeers(view, kPhasePartialsRead, view.epochs->lastPartials);
}

// One kernel per combine: stage the partials, hand over through the signals, reduce. Every block
// of every rank is resident at once (the SM budget guarantees it), so blocks may wait for one
// another.
__global__ void __launch_bounds__(kThreads) combineKernel(DomainView view, GroupDims dims, HandleDevice handle,
                                                          CombineBuffers buffers) {
  extern __shared__ int32_t sortedRows[];  // [kWarpsPerBlock][metaWidth]
  const uint64_t epoch = callEpoch(view);
  if (!openCombine(view, handle)) return;
  stagePartials(view, dims, handle, buffers, sortedRows);
  if (isLastBlock(view.epochs) && threadIdx.x == 0) signalPeers(view, kPhasePartialsReady, epoch);
  if (!waitForPeers(view, kPhasePartialsReady, epoch)) return;
  reducePartials(view, dims, handle, buffers);
  closeCombine(view, buffers, epoch, /*signalPartialsRead=*/true);
}

// Windowed combine (one domain, dims.combineWindow = C < maxTokens): the tokens of every source go
// in windows of C, [wC, (w + 1)C); window w's partials land in half w % 2 of the landing area, row
// (half x R + source) x C + t - wC, so that a rank stages window w + 1 while its peers still read
// window w, and the area holds 2 x R x C rows instead of R x maxTokens. Per window the ranks signal
// "staged" and "read"; sums run in the same order as without windows (the same bits).
__device__ __forceinline__ uint8_t* windowPartial(const DomainView& view, const GroupDims& dims, int owner, int window,
                                                  int source, int64_t t) {
  const int C = dims.combineWindow;
  const size_t row = (static_cast<size_t>(window & 1) * view.ranks + source) * C + (t - static_cast<int64_t>(window) * C);
  return view.peerBuffers[owner] + view.layout.combineRows + row * rowBytesOf(dims);
}

static_assert((kMaxDomainRanks & (kMaxDomainRanks - 1)) == 0, "sourceHolding steps over a power of two");

// The pairs received here whose source token lies in window w. Each source's slots in the window
// are one contiguous range (its slots are in token order): the block finds the ranges (two binary
// searches per source), then its warps stride over their union as over all pairs without windows,
// so that every warp of the grid has rows to copy.
__device__ void stageWindow(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                            const CombineBuffers& in, int32_t* sortedRows, int window) {
  __shared__ int64_t rangeStart[kMaxDomainRanks];
  __shared__ int64_t rangePrefix[kMaxDomainRanks + 1];  // ranges of the sources below s, in pairs
  const int R = view.ranks;
  const int64_t first = static_cast<int64_t>(window) * dims.combineWindow, end = first + dims.combineWindow;
  const int64_t pairs = handle.counts->recvPairs;
  for (int s = threadIdx.x; s < R; s += blockDim.x) {
    const int64_t lo = handle.pairBase[s], hi = s + 1 < R ? handle.pairBase[s + 1] : pairs;
    auto tokenOf = [&](int64_t slot) { return static_cast<int64_t>(handle.recvPairs[slot].srcToken); };
    const int64_t from = firstIndexAtLeast(lo, hi, first, tokenOf);
    rangeStart[s] = from;
    rangePrefix[s + 1] = firstIndexAtLeast(from, hi, end, tokenOf) - from;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    rangePrefix[0] = 0;
    for (int s = 0; s < R; ++s) rangePrefix[s + 1] += rangePrefix[s];
  }
  __syncthreads();
  int32_t* order = sortedRows + warpInBlock() * dims.metaWidth;
  for (int64_t i = globalWarp(); i < rangePrefix[R]; i += warpsInGrid()) {
    const int source = sourceHolding(rangePrefix, R, kMaxDomainRanks, i);
    const int64_t j = rangeStart[source] + (i - rangePrefix[source]);
    const int token = handle.recvPairs[j].srcToken;
    stagePair(view, dims, handle, in, order, j, windowPartial(view, dims, view.localRank, window, source, token));
  }
  __syncthreads();  // the ranges are read before the next window rewrites them
}

__global__ void __launch_bounds__(kThreads) combineWindowedKernel(DomainView view, GroupDims dims, HandleDevice handle,
                                                                  CombineBuffers buffers) {
  extern __shared__ int32_t sortedRows[];  // [kWarpsPerBlock][metaWidth]
  const uint64_t epoch = callEpoch(view);
  if (!openCombine(view, handle)) return;
  const int C = dims.combineWindow;
  // The same on every rank: the layout read every rank's token count.
  const int windows = (handle.counts->groupMaxTokens + C - 1) / C;
  for (int w = 0; w < windows; ++w) {
    // Half w % 2 was last read in window w - 2 (before that: in the previous call, waited above).
    if (w >= 2 && !waitForPeers(view, kPhaseWindowRead, windowSignal(epoch, w - 2))) return;
    stageWindow(view, dims, handle, buffers, sortedRows, w);
    if (isLastBlockOfRound(&view.epochs->windowBlocks[0], w) && threadIdx.x == 0)
      signalPeers(view, kPhaseWindowStaged, windowSignal(epoch, w));
    if (!waitForPeers(view, kPhaseWindowStaged, windowSignal(epoch, w))) return;
    const int64_t first = static_cast<int64_t>(w) * C, end = min(first + C, static_cast<int64_t>(handle.numTokens));
    for (int64_t t = first + globalWarp(); t < end; t += warpsInGrid())
      reduceToken(view, dims, handle, buffers, t,
                  [&](const SendPair& pair) { return windowPartial(view, dims, pair.dstRank, w, view.rank, t); });
    if (isLastBlockOfRound(&view.epochs->windowBlocks[1], w) && threadIdx.x == 0)
      signalPeers(view, kPhaseWindowRead, windowSignal(epoch, w));
  }
  closeCombine(view, buffers, epoch, /*signalPartialsRead=*/true);
}

// Rank partial (and its probs gradients) of pair `pair` in this domain.
__device__ __forceinline__ const uint8_t* rankPartial(const DomainView& view, const SendPair& pair, size_t rowBytes) {
  return view.peerBuffers[pair.dstRank] + view.layout.combineRows + static_cast<size_t>(pair.slot) * rowBytes;
}

__device__ __forceinline__ float rankPartialGrad(const DomainView& view, const SendPair& pair, int width, int k) {
  const auto* probs = reinterpret_cast<const float*>(view.peerBuffers[pair.dstRank] + view.layout.combineProbs);
  return probs[static_cast<size_t>(pair.slot) * width + k];
}

// One routed token's domain partial: its rank partials in this domain summed in rank order, then
// per selection the gradient of the pair that carries it (pairOf(k) < 0: none here).
template <class PairOf>
__device__ void writeDomainPartial(const DomainView& view, const GroupDims& dims, const SendPair* pairs, int count,
                                   PairOf pairOf, uint8_t* dst) {
  const size_t rowBytes = rowBytesOf(dims);
  warpSumRows(count, [&](int i) { return rankPartial(view, pairs[i], rowBytes); }, dims.hidden, dims.rowType, dst);
  auto* grads = reinterpret_cast<float*>(dst + view.layout.netCombineGradOffset);
  for (int k = laneId(); k < dims.metaWidth; k += kWarp) {
    const int p = pairOf(k);
    grads[k] = p >= 0 ? rankPartialGrad(view, pairs[p], dims.metaWidth, k) : 0.0f;
  }
}

// Two-hop, one launch per network chunk: chunk 0 stages the rank partials; every chunk then writes
// the domain partials of the rows its network transfer carries (rail peers' tokens whose row in
// the send slot lies in the chunk), the last chunk also this rank's own tokens (into its own
// domain's slot of the receive region) and releases the domain's rank partials. The epoch stays
// open (the reduce kernel closes it) so that the network jobs' prologues read it.
__global__ void __launch_bounds__(kThreads) hybridCollectKernel(DomainView view, GroupDims dims, HandleDevice handle,
                                                                CombineBuffers buffers, int chunk) {
  extern __shared__ int32_t sortedRows[];  // [kWarpsPerBlock][metaWidth]
  if (handle.counts->fault) return;
  const uint64_t epoch = callEpoch(view);
  const bool lastChunk = chunk == view.netChunks - 1;
  if (chunk == 0) {
    if (!waitForPeers(view, kPhasePartialsRead, view.epochs->lastPartials)) return;
    stagePartials(view, dims, handle, buffers, sortedRows);
    if (isLastBlock(view.epochs) && threadIdx.x == 0) signalPeers(view, kPhasePartialsReady, epoch);
  }
  if (!waitForPeers(view, kPhasePartialsReady, epoch)) return;
  const int W = dims.metaWidth, T = dims.maxTokens;
  const size_t netRow = view.layout.netCombineRowBytes;
  uint8_t* own = view.peerBuffers[view.localRank];
  // One warp per (origin domain, token).
  const int64_t items = static_cast<int64_t>(view.domains) * T;
  for (int64_t item = globalWarp(); item < items; item += warpsInGrid()) {
    const int origin = static_cast<int>(item / T), t = static_cast<int>(item % T);
    if (t >= handle.routeTokens[origin]) continue;
    const size_t route = static_cast<size_t>(origin) * T + t;
    const int count = handle.routePairCount[route];
    const SendPair* pairs = handle.routePairs + route * W;
    if (origin == view.domain) {
      if (!lastChunk || count == 0) continue;
      const OwnSelection* sel = handle.ownSel + static_cast<size_t>(t) * W;
      uint8_t* dst = own + view.layout.netCombineRecv + (static_cast<size_t>(origin) * view.layout.netSlotRows + t) * netRow;
      writeDomainPartial(view, dims, pairs, count, [&](int k) { return sel[k].pairIndex; }, dst);
    } else {
      const int32_t row = handle.relayIndex[route];
      if (row < 0 || row / view.netChunkRows != chunk) continue;
      const int32_t* selPair = handle.routeSelPair + route * W;
      uint8_t* dst = own + view.layout.netCombineSend + (view.otherDomainSlot(origin) * view.layout.netSlotRows + row) * netRow;
      writeDomainPartial(view, dims, pairs, count, [&](int k) { return selPair[k]; }, dst);
    }
  }
  // The domain's rank partials are read: peers may overwrite theirs in the next combine.
  if (lastChunk && isLastBlock(view.epochs) && threadIdx.x == 0) signalPeers(view, kPhasePartialsRead, epoch);
}

// Two-hop, second kernel (after the network job): every token of this rank sums its domain
// partials in domain order; the probs gradient of a selection comes from its domain's partial.
__global__ void __launch_bounds__(kThreads) hybridReduceKernel(DomainView view, GroupDims dims, HandleDevice handle,
                                                               CombineBuffers out) {
  extern __shared__ int32_t domainRows[];  // [kWarpsPerBlock][domains]: row of each summed domain partial
  if (handle.counts->fault) {
    if (blockIdx.x == 0 && threadIdx.x == 0) view.epochs->current += 1;
    return;
  }
  const uint64_t epoch = callEpoch(view);
  // Chunks land in order on one stream: the last one's signal covers them all.
  if (!waitForPeers(view, kPhaseNetPartialsReady, chunkSignal(epoch, view.netChunks - 1), /*selfOnly=*/true)) return;
  const int W = dims.metaWidth, T = dims.maxTokens, M = view.domains, lane = laneId();
  const size_t netRow = view.layout.netCombineRowBytes;
  const uint8_t* received = view.peerBuffers[view.localRank] + view.layout.netCombineRecv;
  int32_t* rows = domainRows + warpInBlock() * M;
  for (int64_t t = globalWarp(); t < handle.numTokens; t += warpsInGrid()) {
    // Row of domain n's partial inside slot n of the receive region, -1 if the token skips n.
    auto rowOf = [&](int n) -> int32_t {
      if (n == view.domain) return handle.sendPairCount[t] > 0 ? static_cast<int32_t>(t) : -1;
      return handle.packIndex[static_cast<size_t>(n) * T + t];
    };
    int count = 0;
    if (lane == 0)
      for (int n = 0; n < M; ++n) {
        const int32_t row = rowOf(n);
        if (row >= 0) rows[count++] = n * static_cast<int32_t>(view.layout.netSlotRows) + row;
      }
    count = __shfl_sync(0xFFFFFFFFu, count, 0);
    __syncwarp();
    warpSumRows(count, [&](int i) { return received + static_cast<size_t>(rows[i]) * netRow; }, dims.hidden,
                dims.rowType, static_cast<uint8_t*>(out.out) + t * rowBytesOf(dims));
    __syncwarp();
    if (out.outProbsGrad) {
      const OwnSelection* own = handle.ownSel + t * W;
      writeTokenProbsGrad(
          dims, handle, out, t, [&](int k) { return own[k].domain >= 0; },
          [&](int k) {
            const size_t row = static_cast<size_t>(own[k].domain) * view.layout.netSlotRows + rowOf(own[k].domain);
            return reinterpret_cast<const float*>(received + row * netRow + view.layout.netCombineGradOffset)[k];
          });
    }
  }
  // The domain's rank partials were read (and signalled) by the collect kernels.
  closeCombine(view, out, epoch, /*signalPartialsRead=*/false);
}

}  // namespace

cudaError_t launchCombine(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                          const CombineBuffers& buffers, LaunchBudget budget, cudaStream_t stream) {
  discardEarlierLaunchError();
  const size_t sortScratch = static_cast<size_t>(kWarpsPerBlock) * dims.metaWidth * sizeof(int32_t);
  const int64_t warps = std::max<int64_t>(handle.pairCapacity, handle.numTokens);
  const int grid = cappedGrid(warps, kWarpsPerBlock, budget);
  if (dims.combineWindow < dims.maxTokens)
    combineWindowedKernel<<<grid, kThreads, sortScratch, stream>>>(view, dims, handle, buffers);
  else
    combineKernel<<<grid, kThreads, sortScratch, stream>>>(view, dims, handle, buffers);
  return cudaGetLastError();
}

}  // namespace nccl_moe

namespace nccl_moe {

cudaError_t launchHybridCombineCollect(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                                       const CombineBuffers& buffers, int chunk, LaunchBudget budget,
                                       cudaStream_t stream) {
  discardEarlierLaunchError();
  const size_t sortScratch = static_cast<size_t>(kWarpsPerBlock) * dims.metaWidth * sizeof(int32_t);
  const int64_t warps = std::max<int64_t>(handle.pairCapacity, static_cast<int64_t>(view.domains) * dims.maxTokens);
  hybridCollectKernel<<<cappedGrid(warps, kWarpsPerBlock, budget), kThreads, sortScratch, stream>>>(view, dims, handle,
                                                                                                  buffers, chunk);
  return cudaGetLastError();
}

cudaError_t launchHybridCombineReduce(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                                      const CombineBuffers& buffers, LaunchBudget budget, cudaStream_t stream) {
  discardEarlierLaunchError();
  const size_t rowScratch = static_cast<size_t>(kWarpsPerBlock) * view.domains * sizeof(int32_t);
  hybridReduceKernel<<<cappedGrid(handle.numTokens, kWarpsPerBlock, budget), kThreads, rowScratch, stream>>>(
      view, dims, handle, buffers);
  return cudaGetLastError();
}

}  // namespace nccl_moe
