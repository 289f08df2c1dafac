// Dispatch inside an NVLink domain, pull-based: every rank stages its token rows once (quantised
// to E4M3 when FP8 dispatch is on) in its peer-visible buffer; every destination then pulls the
// rows it receives straight into the caller's output, in the layout's canonical order.
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

// Stage this rank's rows (one warp per token), then announce them.
__global__ void __launch_bounds__(kThreads) stageRowsKernel(DomainView view, GroupDims dims, HandleDevice handle,
                                                            const void* x) {
  if (!waitForPeers(view, kPhaseRowsRead, view.epochs->lastRows)) return;
  if (handle.counts->fault) return;
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
  if (isLastBlock(view.epochs) && threadIdx.x == 0) signalPeers(view, kPhaseRowsReady, callEpoch(view));
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

// Pull every received row (one warp per row), then tell the sources their rows were read.
__global__ void __launch_bounds__(kThreads) pullRowsKernel(DomainView view, GroupDims dims, HandleDevice handle,
                                                           DispatchOutputs out) {
  if (handle.counts->fault) {
    // Nothing moves on any rank; the call still ends here.
    if (blockIdx.x == 0 && threadIdx.x == 0) view.epochs->current += 1;
    return;
  }
  const uint64_t epoch = callEpoch(view);
  if (!waitForPeers(view, kPhaseRowsReady, epoch)) return;
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
  if (isLastBlock(view.epochs) && threadIdx.x == 0) {
    signalPeers(view, kPhaseRowsRead, epoch);
    view.epochs->lastRows = epoch;
    view.epochs->current = epoch;
  }
}

}  // namespace

cudaError_t launchDispatch(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                           const DispatchOutputs& outputs, LaunchBudget budget, cudaStream_t stream) {
  stageRowsKernel<<<cappedGrid(handle.numTokens, kThreads / kWarp, budget), kThreads, 0, stream>>>(view, dims, handle, outputs.x);
  // The received row count lives on the device; size the grid by the capacity, capped by the budget.
  pullRowsKernel<<<cappedGrid(handle.expertMajor ? handle.rowCapacity : handle.pairCapacity, kThreads / kWarp, budget), kThreads, 0,
                   stream>>>(view, dims, handle, outputs);
  return cudaGetLastError();
}

}  // namespace nccl_moe
