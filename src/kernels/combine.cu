// Combine inside an NVLink domain, mirror of dispatch: every rank reduces its received rows of each
// (source token) pair into one partial (float32, rows in ascending order, rounded to the row type)
// in its peer-visible buffer; every source then pulls its tokens' partials in destination-rank
// order and sums them in float32: the canonical order of reference/reference.h.
#include <algorithm>

#include "kernels/device_sync.cuh"
#include "kernels/launch.h"
#include "kernels/row_ops.cuh"

namespace nccl_moe {

namespace {

constexpr int kThreads = 512;
constexpr int kWarpsPerBlock = kThreads / kWarp;

__device__ __forceinline__ size_t rowBytesOf(const GroupDims& dims) {
  return static_cast<size_t>(dims.hidden) * elementSize(dims.rowType);
}

// Partials of the pairs received here, into this rank's peer-visible buffer (one warp per pair).
// sortedRows: shared scratch of metaWidth entries per warp.
__device__ void stagePartials(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                              const CombineBuffers& in, int32_t* sortedRows) {
  const int W = dims.metaWidth, lane = laneId();
  const size_t rowBytes = rowBytesOf(dims);
  uint8_t* partials = view.peerBuffers[view.rank] + view.layout.combineRows;
  auto* partialProbs = reinterpret_cast<float*>(view.peerBuffers[view.rank] + view.layout.combineProbs);
  int32_t* order = sortedRows + warpInBlock() * W;
  const int64_t pairs = handle.counts->recvPairs;
  for (int64_t j = globalWarp(); j < pairs; j += warpsInGrid()) {
    uint8_t* dst = partials + j * rowBytes;
    if (!handle.expertMajor) {
      warpCopyBytes(dst, static_cast<const uint8_t*>(in.x) + j * rowBytes, rowBytes);
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
}

// Each of this rank's tokens: sum its partials in destination-rank order (one warp per token).
__device__ void reducePartials(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                               const CombineBuffers& out) {
  const int W = dims.metaWidth, lane = laneId();
  const size_t rowBytes = rowBytesOf(dims);
  for (int64_t t = globalWarp(); t < handle.numTokens; t += warpsInGrid()) {
    const SendPair* pairs = handle.sendPairs + t * W;
    const int count = handle.sendPairCount[t];
    uint8_t* dst = static_cast<uint8_t*>(out.out) + t * rowBytes;
    warpSumRows(
        count,
        [&](int i) {
          return view.peerBuffers[pairs[i].dstRank] + view.layout.combineRows + static_cast<size_t>(pairs[i].slot) * rowBytes;
        },
        dims.hidden, dims.rowType, dst);
    if (out.outProbsGrad) {
      const OwnSelection* own = handle.ownSel + t * W;
      const bool topk = handle.routingFormat == static_cast<int>(RoutingFormat::kTopk);
      float* grads = out.outProbsGrad + t * (topk ? out.topk : dims.experts);
      if (!topk)
        for (int e = lane; e < dims.experts; e += kWarp) grads[e] = 0.0f;
      __syncwarp();
      for (int k = lane; k < (topk ? out.topk : W); k += kWarp) {
        float grad = 0.0f;
        if (own[k].pairIndex >= 0) {
          const SendPair pair = pairs[own[k].pairIndex];
          const auto* probs = reinterpret_cast<const float*>(view.peerBuffers[pair.dstRank] + view.layout.combineProbs);
          grad = probs[static_cast<size_t>(pair.slot) * W + k];
        }
        if (topk)
          grads[k] = grad;
        else if (own[k].pairIndex >= 0)
          grads[own[k].slot] = grad;
      }
    }
  }
}

// One kernel per combine: stage the partials, hand over through the signals, reduce. Every block
// of every rank is resident at once (the SM budget guarantees it), so blocks may wait for one
// another.
__global__ void __launch_bounds__(kThreads) combineKernel(DomainView view, GroupDims dims, HandleDevice handle,
                                                          CombineBuffers buffers) {
  extern __shared__ int32_t sortedRows[];  // [kWarpsPerBlock][metaWidth]
  if (handle.counts->fault) {
    // Nothing moves on any rank; the call still ends here.
    if (blockIdx.x == 0 && threadIdx.x == 0) view.epochs->current += 1;
    return;
  }
  const uint64_t epoch = callEpoch(view);
  // Peers must be done with this rank's partials of the previous combine before they are overwritten.
  if (!waitForPeers(view, kPhasePartialsRead, view.epochs->lastPartials)) return;
  stagePartials(view, dims, handle, buffers, sortedRows);
  if (isLastBlock(view.epochs) && threadIdx.x == 0) signalPeers(view, kPhasePartialsReady, epoch);
  if (!waitForPeers(view, kPhasePartialsReady, epoch)) return;
  reducePartials(view, dims, handle, buffers);
  if (isLastBlock(view.epochs) && threadIdx.x == 0) {
    signalPeers(view, kPhasePartialsRead, epoch);
    view.epochs->lastPartials = epoch;
    view.epochs->current = epoch;
  }
}

}  // namespace

cudaError_t launchCombine(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                          const CombineBuffers& buffers, LaunchBudget budget, cudaStream_t stream) {
  const size_t sortScratch = static_cast<size_t>(kWarpsPerBlock) * dims.metaWidth * sizeof(int32_t);
  const int64_t warps = std::max<int64_t>(handle.pairCapacity, handle.numTokens);
  combineKernel<<<cappedGrid(warps, kWarpsPerBlock, budget), kThreads, sortScratch, stream>>>(view, dims, handle,
                                                                                           buffers);
  return cudaGetLastError();
}

}  // namespace nccl_moe
