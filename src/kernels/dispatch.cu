// Dispatch, pull-based. Inside one NVLink domain it is one kernel: every rank stages its token rows
// once (quantised to E4M3 when FP8 dispatch is on) in its peer-visible buffer; every destination
// then pulls the rows it receives straight into the caller's output, in the canonical order.
// With several domains (two-hop) the stage also packs the rows each other domain needs, in token
// order, for the network jobs (transport/rail_exchange), and the pull reads a row from another
// domain out of the network receive slot of the source's rail peer in this domain, one launch per
// network chunk as the chunks land.
#include <algorithm>

#include "misc/launch_error.h"
#include "transport/device_sync.cuh"
#include "kernels/fp8_row.cuh"
#include "kernels/launch.h"
#include "kernels/row_ops.cuh"

namespace nccl_moe {

namespace {

constexpr int kThreads = 512;

__device__ __forceinline__ size_t stagedRowBytes(const GroupDims& dims) {
  return dims.fp8 ? static_cast<size_t>(dims.hidden) : static_cast<size_t>(dims.hidden) * elementSize(dims.rowType);
}

// This rank's rows into its staging area (one warp per token; not when x is that area already);
// with several domains, also into the network send slot of every other domain the token goes to.
__device__ void stageRows(const DomainView& view, const GroupDims& dims, const HandleDevice& handle, const void* x,
                          bool xInBuffer) {
  uint8_t* own = view.peerBuffers[view.localRank];
  uint8_t* rows = own + view.layout.dispatchRows;
  auto* scales = reinterpret_cast<float*>(own + view.layout.dispatchScales);
  const size_t inBytes = static_cast<size_t>(dims.hidden) * elementSize(dims.rowType);
  const size_t outBytes = stagedRowBytes(dims);
  const size_t scaleBytes = dims.fp8 ? static_cast<size_t>(dims.scaleBlocks) * sizeof(float) : 0;
  const size_t netRow = view.layout.netDispatchRowBytes;
  for (int64_t t = globalWarp(); t < handle.numTokens; t += warpsInGrid()) {
    const uint8_t* src = static_cast<const uint8_t*>(x) + t * inBytes;
    uint8_t* staged = rows + t * outBytes;
    float* stagedScales = scales + t * dims.scaleBlocks;
    if (dims.fp8)
      warpQuantizeRowE4m3(src, dims.rowType, dims.hidden, dims.fp8PowerOfTwo, staged, stagedScales);
    else if (!xInBuffer)
      warpCopyBytes(staged, src, outBytes);
    if (view.domains == 1) continue;
    __syncwarp();  // the lanes read back what the whole warp staged
    for (int n = 0; n < view.domains; ++n) {
      if (n == view.domain) continue;
      const int32_t packed = handle.packIndex[static_cast<size_t>(n) * dims.maxTokens + t];
      if (packed < 0) continue;
      uint8_t* dst = own + view.layout.netDispatchSend + (view.otherDomainSlot(n) * view.layout.netSlotRows + packed) * netRow;
      warpCopyBytes(dst, staged, outBytes);
      if (scaleBytes) warpCopyBytes(dst + view.layout.netDispatchScaleOffset, reinterpret_cast<const uint8_t*>(stagedScales), scaleBytes);
    }
  }
}

struct RowSource {
  const uint8_t* row;
  const uint8_t* scales;  // FP8 only
};

// Where received row `entry` is read from: the source's staging area in this domain, or the
// network receive slot of the source's rail peer here.
__device__ __forceinline__ RowSource locateRow(const DomainView& view, const GroupDims& dims, const RecvEntry& entry) {
  const uint8_t* peer = view.peerBuffers[entry.srcRank % view.localRanks];
  if (entry.netRow < 0) {
    const size_t token = static_cast<size_t>(entry.srcToken);
    return {peer + view.layout.dispatchRows + token * stagedRowBytes(dims),
            peer + view.layout.dispatchScales + token * dims.scaleBlocks * sizeof(float)};
  }
  const int srcDomain = entry.srcRank / view.localRanks;
  const uint8_t* row = peer + view.layout.netDispatchRecv +
                       (view.otherDomainSlot(srcDomain) * view.layout.netSlotRows + entry.netRow) *
                           view.layout.netDispatchRowBytes;
  return {row, row + view.layout.netDispatchScaleOffset};
}

// Writes the routing of received row j into the caller's per-row outputs.
__device__ void writeRowRouting(const GroupDims& dims, const HandleDevice& handle, const DispatchOutputs& out,
                                int64_t j, const RecvEntry& entry) {
  const int lane = laneId();
  if (handle.expertMajor) {
    if (out.recvProbs && lane == 0) out.recvProbs[j] = entry.srcRank < 0 ? 0.0f : handle.recvRowProb[j];
    return;
  }
  const MetaSelection* sel = handle.pairSel + j * dims.metaWidth;
  if (handle.routingFormat == static_cast<int>(RoutingFormat::kTopk)) {
    for (int k = lane; k < out.topk; k += kWarp) {
      if (out.recvTopkIdx) out.recvTopkIdx[j * out.topk + k] = sel[k].expert;
      if (out.recvProbs) out.recvProbs[j * out.topk + k] = sel[k].expert >= 0 ? sel[k].prob : 0.0f;
    }
    return;
  }
  const int L = dims.localExperts;
  for (int l = lane; l < L; l += kWarp) {
    uint8_t selected = 0;
    float prob = 0.0f;
    for (int k = 0; k < dims.metaWidth; ++k)
      if (sel[k].expert == l) {
        selected = 1;
        prob = sel[k].prob;
      }
    if (out.recvRoutingMap) out.recvRoutingMap[j * L + l] = selected;
    if (out.recvProbs) out.recvProbs[j * L + l] = prob;
  }
}

// Which received rows one pull moves: all of them, those of this domain's ranks (with the padding
// rows), or those that came over the network in one chunk.
struct PullSet {
  enum Kind { kAll, kDirect, kNetworkChunk } kind = kAll;
  int chunk = 0;  // kNetworkChunk: rows [chunk * netChunkRows, (chunk + 1) * netChunkRows) of a slot

  __device__ bool contains(const DomainView& view, const RecvEntry& entry) const {
    if (kind == kAll) return true;
    if (kind == kDirect) return entry.netRow < 0;
    return entry.netRow >= 0 && entry.netRow / view.netChunkRows == chunk;
  }
};

// One received row j from `source` into the caller's output, with its routing outputs.
__device__ __forceinline__ void writeRow(const GroupDims& dims, const HandleDevice& handle, const DispatchOutputs& out,
                                         int64_t j, const RecvEntry& entry, const RowSource* source, bool routing) {
  const size_t rowBytes = stagedRowBytes(dims);
  uint8_t* dst = static_cast<uint8_t*>(out.recvX) + j * rowBytes;
  float* dstScales = out.recvScales ? out.recvScales + j * dims.scaleBlocks : nullptr;
  if (source == nullptr) {  // padding
    warpZeroBytes(dst, rowBytes);
    if (dstScales) warpZeroBytes(dstScales, dims.scaleBlocks * sizeof(float));
  } else {
    warpCopyBytes(dst, source->row, rowBytes);
    if (dstScales) warpCopyBytes(dstScales, source->scales, dims.scaleBlocks * sizeof(float));
  }
  if (routing) writeRowRouting(dims, handle, out, j, entry);
}

// Received rows into the caller's output (one warp per row). Expert-major rows go pair by pair
// (source token by source token, the order of the sources' staging): a token's row is read from
// memory once and written to each of its experts' rows here; padding rows are zeroed apart.
__device__ void pullRows(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                         const DispatchOutputs& out, PullSet set) {
  const bool routing = out.recvProbs || out.recvTopkIdx || out.recvRoutingMap;
  if (!handle.expertMajor) {
    const int64_t rows = handle.counts->recvPairs;
    for (int64_t j = globalWarp(); j < rows; j += warpsInGrid()) {
      const RecvEntry entry = handle.recvPairs[j];
      if (!set.contains(view, entry)) continue;
      const RowSource source = locateRow(view, dims, entry);
      writeRow(dims, handle, out, j, entry, &source, routing);
    }
    return;
  }
  const int64_t pairs = handle.counts->recvPairs;
  const int W = dims.metaWidth;
  for (int64_t p = globalWarp(); p < pairs; p += warpsInGrid()) {
    const RecvEntry pair = handle.recvPairs[p];
    if (!set.contains(view, pair)) continue;
    const RowSource source = locateRow(view, dims, pair);
    for (int k = 0; k < W; ++k) {
      const int32_t j = handle.pairRows[p * W + k];
      if (j >= 0) writeRow(dims, handle, out, j, handle.recvRows[j], &source, routing);  // -1: not here, or past the budget
    }
  }
  if (set.kind == PullSet::kNetworkChunk) return;  // padding goes with the direct rows
  const int64_t rows = handle.counts->recvRows;
  for (int64_t j = globalWarp(); j < rows; j += warpsInGrid()) {
    const RecvEntry entry = handle.recvRows[j];
    if (entry.srcRank < 0) writeRow(dims, handle, out, j, entry, nullptr, routing);
  }
}

// The call's end, in the grid's last block: this rank has read its peers' rows, and the epoch
// advances. With releaseInputs the block also waits until every domain peer has read this rank's
// staging area, which the caller may then overwrite (zero-copy inputs).
__device__ void closeDispatch(const DomainView& view, const DispatchOutputs& out, uint64_t epoch) {
  const bool last = isLastBlock(view.epochs);
  if (last && threadIdx.x == 0) {
    signalPeers(view, kPhaseRowsRead, epoch);
    view.epochs->lastRows = epoch;
    view.epochs->current = epoch;
  }
  if (last && out.releaseInputs) waitForPeers(view, kPhaseRowsRead, epoch);
}

// One kernel per dispatch: stage, hand over through the signals, pull. Every block of every rank
// is resident at once (the SM budget guarantees it), so blocks may wait for one another.
__global__ void __launch_bounds__(kThreads) dispatchKernel(DomainView view, GroupDims dims, HandleDevice handle,
                                                           DispatchOutputs out) {
  if (handle.counts->fault) {
    // Nothing moves on any rank; the call still ends here.
    if (blockIdx.x == 0 && threadIdx.x == 0) view.epochs->current += 1;
    return;
  }
  const uint64_t epoch = callEpoch(view);
  // Peers must be done with this rank's rows of the previous dispatch before they are overwritten.
  if (!waitForPeers(view, kPhaseRowsRead, view.epochs->lastRows)) return;
  stageRows(view, dims, handle, out.x, out.xInBuffer != 0);
  if (isLastBlock(view.epochs) && threadIdx.x == 0) signalPeers(view, kPhaseRowsReady, epoch);
  if (!waitForPeers(view, kPhaseRowsReady, epoch)) return;
  pullRows(view, dims, handle, out, PullSet{});
  closeDispatch(view, out, epoch);
}

// Two-hop, first kernel: stage and pack, announce the direct rows. The call's epoch stays open
// (the pull kernel closes it), so the network job's prologue after this kernel reads it.
__global__ void __launch_bounds__(kThreads) hybridStageKernel(DomainView view, GroupDims dims, HandleDevice handle,
                                                              DispatchOutputs out) {
  if (handle.counts->fault) return;
  const uint64_t epoch = callEpoch(view);
  if (!waitForPeers(view, kPhaseRowsRead, view.epochs->lastRows)) return;
  stageRows(view, dims, handle, out.x, out.xInBuffer != 0);
  if (isLastBlock(view.epochs) && threadIdx.x == 0) signalPeers(view, kPhaseRowsReady, epoch);
}

// Two-hop, after the stage: the rows of this domain's ranks (networkChunk = kDirectRows, launched
// while the network groups run beside it), or the rows of network chunk c once every domain peer
// has received it (each launched after this rank's chunk c has landed). The last chunk closes the
// call.
__global__ void __launch_bounds__(kThreads) hybridPullKernel(DomainView view, GroupDims dims, HandleDevice handle,
                                                             DispatchOutputs out, int networkChunk) {
  const bool closesCall = networkChunk == view.netChunks - 1;
  if (handle.counts->fault) {
    if (closesCall && blockIdx.x == 0 && threadIdx.x == 0) view.epochs->current += 1;
    return;
  }
  const uint64_t epoch = callEpoch(view);
  if (networkChunk == kDirectRows) {
    if (!waitForPeers(view, kPhaseRowsReady, epoch)) return;
    pullRows(view, dims, handle, out, PullSet{PullSet::kDirect});
    return;
  }
  if (!waitForPeers(view, kPhaseNetRowsReady, chunkSignal(epoch, networkChunk))) return;
  pullRows(view, dims, handle, out, PullSet{PullSet::kNetworkChunk, networkChunk});
  if (closesCall) closeDispatch(view, out, epoch);
}

int64_t pullWarps(const HandleDevice& handle) {
  return std::max<int64_t>(handle.numTokens, handle.expertMajor ? handle.rowCapacity : handle.pairCapacity);
}

}  // namespace

cudaError_t launchDispatch(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                           const DispatchOutputs& outputs, LaunchBudget budget, cudaStream_t stream) {
  discardEarlierLaunchError();
  // The received row count lives on the device: size the grid by the capacity, capped by the budget.
  dispatchKernel<<<cappedGrid(pullWarps(handle), kThreads / kWarp, budget), kThreads, 0, stream>>>(view, dims, handle,
                                                                                                 outputs);
  return cudaGetLastError();
}

cudaError_t launchHybridDispatchStage(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                                      const DispatchOutputs& outputs, LaunchBudget budget, cudaStream_t stream) {
  discardEarlierLaunchError();
  hybridStageKernel<<<cappedGrid(handle.numTokens, kThreads / kWarp, budget), kThreads, 0, stream>>>(view, dims, handle,
                                                                                                   outputs);
  return cudaGetLastError();
}

cudaError_t launchHybridDispatchPull(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                                     const DispatchOutputs& outputs, int networkChunk, LaunchBudget budget,
                                     cudaStream_t stream) {
  discardEarlierLaunchError();
  hybridPullKernel<<<cappedGrid(pullWarps(handle), kThreads / kWarp, budget), kThreads, 0, stream>>>(
      view, dims, handle, outputs, networkChunk);
  return cudaGetLastError();
}

}  // namespace nccl_moe
