// Dispatch inside an NVLink domain, pull-based, in one kernel: every rank stages its token rows
// once (quantised to E4M3 when FP8 dispatch is on) in its peer-visible buffer; every destination
// then pulls the rows it receives straight into the caller's output, in the canonical order.
#include <algorithm>

#include "kernels/device_sync.cuh"
#include "kernels/fp8_row.cuh"
#include "kernels/launch.h"
#include "kernels/row_ops.cuh"

namespace nccl_moe {

namespace {

constexpr int kThreads = 512;

__device__ __forceinline__ size_t stagedRowBytes(const GroupDims& dims) {
  return dims.fp8 ? static_cast<size_t>(dims.hidden) : static_cast<size_t>(dims.hidden) * elementSize(dims.rowType);
}

// This rank's rows into its staging area (one warp per token).
__device__ void stageRows(const DomainView& view, const GroupDims& dims, const HandleDevice& handle, const void* x) {
  uint8_t* rows = view.peerBuffers[view.rank] + view.layout.dispatchRows;
  auto* scales = reinterpret_cast<float*>(view.peerBuffers[view.rank] + view.layout.dispatchScales);
  const size_t inBytes = static_cast<size_t>(dims.hidden) * elementSize(dims.rowType);
  const size_t outBytes = stagedRowBytes(dims);
  for (int64_t t = globalWarp(); t < handle.numTokens; t += warpsInGrid()) {
    const uint8_t* src = static_cast<const uint8_t*>(x) + t * inBytes;
    if (dims.fp8)
      warpQuantizeRowE4m3(src, dims.rowType, dims.hidden, dims.fp8PowerOfTwo, rows + t * outBytes,
                          scales + t * dims.scaleBlocks);
    else
      warpCopyBytes(rows + t * outBytes, src, outBytes);
  }
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

// Every received row from its source's staging area into the caller's output (one warp per row).
__device__ void pullRows(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                         const DispatchOutputs& out) {
  const int64_t rows = handle.expertMajor ? handle.counts->recvRows : handle.counts->recvPairs;
  const size_t rowBytes = stagedRowBytes(dims);
  const bool routing = out.recvProbs || out.recvTopkIdx || out.recvRoutingMap;
  for (int64_t j = globalWarp(); j < rows; j += warpsInGrid()) {
    const RecvEntry entry = handle.expertMajor ? handle.recvRows[j] : handle.recvPairs[j];
    uint8_t* dst = static_cast<uint8_t*>(out.recvX) + j * rowBytes;
    float* dstScales = out.recvScales ? out.recvScales + j * dims.scaleBlocks : nullptr;
    if (entry.srcRank < 0) {
      warpZeroBytes(dst, rowBytes);
      if (dstScales) warpZeroBytes(dstScales, dims.scaleBlocks * sizeof(float));
    } else {
      const uint8_t* peer = view.peerBuffers[entry.srcRank];
      warpCopyBytes(dst, peer + view.layout.dispatchRows + entry.srcToken * rowBytes, rowBytes);
      if (dstScales)
        warpCopyBytes(dstScales,
                      peer + view.layout.dispatchScales + static_cast<size_t>(entry.srcToken) * dims.scaleBlocks * sizeof(float),
                      dims.scaleBlocks * sizeof(float));
    }
    if (routing) writeRowRouting(dims, handle, out, j, entry);
  }
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
  stageRows(view, dims, handle, out.x);
  if (isLastBlock(view.epochs) && threadIdx.x == 0) signalPeers(view, kPhaseRowsReady, epoch);
  if (!waitForPeers(view, kPhaseRowsReady, epoch)) return;
  pullRows(view, dims, handle, out);
  if (isLastBlock(view.epochs) && threadIdx.x == 0) {
    signalPeers(view, kPhaseRowsRead, epoch);
    view.epochs->lastRows = epoch;
    view.epochs->current = epoch;
  }
}

}  // namespace

cudaError_t launchDispatch(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                           const DispatchOutputs& outputs, LaunchBudget budget, cudaStream_t stream) {
  // The received row count lives on the device: size the grid by the capacity, capped by the budget.
  const int64_t warps = std::max<int64_t>(handle.numTokens, handle.expertMajor ? handle.rowCapacity : handle.pairCapacity);
  dispatchKernel<<<cappedGrid(warps, kThreads / kWarp, budget), kThreads, 0, stream>>>(view, dims, handle, outputs);
  return cudaGetLastError();
}

}  // namespace nccl_moe
