// Low-latency combine, one NVLink domain (docs/low_latency.md sections 4 and 6): one kernel that
// runs the send half, the receive half or both.
//   send     a warp per received row (l, i < recvCount[l]) writes y's row into combine landing row
//            (token, slot) of its source rank (recvSrcInfo); this rank's own ids and weights are
//            stashed for its receive half (so the caller may overwrite them once the send half has
//            run); the last block releases this rank's arrival at every peer.
//   receive  waits for every peer's arrival, then per token and channel: acc = +0, acc =
//            fmaf(w_k, row(t, k), acc) over the kept slots in slot order, out = bf16(acc) (bit for
//            bit the CPU oracle); the last block credits every peer.
#include <algorithm>

#include "kernels/fp8_row.cuh"  // load8
#include "kernels/low_latency_device.cuh"

namespace nccl_moe {

namespace {

// ---- Send half ----------------------------------------------------------------------------------

// Received rows of every local expert, spread over the grid's warps as one index space (the
// segments follow each other), so that many small segments still use every warp.
__device__ void sendRows(const LowLatencyView& v, const ncclMoeLowLatencyCombineArgs_t& a, int parity) {
  const int64_t warps = warpsInGrid(), me = globalWarp();
  const size_t rowBytes = static_cast<size_t>(v.hidden) * 2;
  int64_t before = 0;  // rows of the segments below l
  for (int l = 0; l < v.localExperts; ++l) {
    int64_t count = a.recvCount[l];
    count = count < 0 ? 0 : count > v.segmentRows ? v.segmentRows : count;
    int64_t first = (me - before) % warps;
    if (first < 0) first += warps;
    for (int64_t i = first; i < count; i += warps) {
      const int64_t row = static_cast<int64_t>(l) * v.segmentRows + i;
      const int32_t s = a.recvSrcInfo[row * 3], t = a.recvSrcInfo[row * 3 + 1], k = a.recvSrcInfo[row * 3 + 2];
      // Source info from elsewhere than this layout's dispatch is undefined use; it must still not
      // write outside the landing rows.
      if (s < 0 || s >= v.ranks || t < 0 || t >= v.maxTokens || k < 0 || k >= v.maxTopk) continue;
      warpCopyBytes(llCombineRow(v, s, parity, t, k), static_cast<const uint8_t*>(a.y) + row * rowBytes, rowBytes);
    }
    before += count;
  }
}

// This rank's ids and weights of the call, for its receive half (-1: a masked slot).
__device__ void stashOwnSlots(const LowLatencyView& v, const ncclMoeLowLatencyCombineArgs_t& a, int parity) {
  const int64_t entries = static_cast<int64_t>(a.numTokens) * a.topk;
  const int64_t threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < entries; i += threads) {
    const int t = static_cast<int>(i / a.topk), k = static_cast<int>(i % a.topk);
    const int64_t at = (static_cast<int64_t>(parity) * v.maxTokens + t) * v.maxTopk + k;
    const bool kept = a.topkIdx[i] >= 0;
    v.stashKept[at] = kept ? 1 : -1;
    v.stashWeights[at] = kept && a.weights != nullptr ? a.weights[i] : 1.0f;
  }
}

__device__ void sendHalf(const LowLatencyView& v, const ncclMoeLowLatencyCombineArgs_t& a, uint64_t seq) {
  const int parity = static_cast<int>(seq & 1);
  if (!llWaitRecords(v, parity, offsetof(LowLatencyPeerRecord, combineCredit), seq > 2 ? seq - 2 : 0,
                     kPhaseLowLatencyCombineCredit))
    return;
  sendRows(v, a, parity);
  stashOwnSlots(v, a, parity);
  if (!llLastBlock(&v.counters->sendBlocksDone)) return;
  llSignalPeers(v, parity, offsetof(LowLatencyPeerRecord, combineArrived), seq);
  if (threadIdx.x == 0) v.counters->combineSent = seq;
}

// ---- Receive half -------------------------------------------------------------------------------

// Channels per warp unit: 8 per lane on the vector path (one 16-byte load per landing row).
constexpr int kVectorChannels = 8;
constexpr int kUnitChannels = kWarp * kVectorChannels;

__device__ __forceinline__ int4 packBf16x8(const float* v) {
  uint32_t words[4];
#pragma unroll
  for (int w = 0; w < 4; ++w)
    words[w] = floatToBf16(v[2 * w]) | (static_cast<uint32_t>(floatToBf16(v[2 * w + 1])) << 16);
  return make_int4(static_cast<int>(words[0]), static_cast<int>(words[1]), static_cast<int>(words[2]),
                   static_cast<int>(words[3]));
}

// out[t] for channels [first, first + kUnitChannels): the fmaf chain in slot order, from +0.
__device__ void reduceUnit(const LowLatencyView& v, const ncclMoeLowLatencyCombineArgs_t& a, int parity, int t,
                           int first, bool vectorized) {
  const int64_t stash = (static_cast<int64_t>(parity) * v.maxTokens + t) * v.maxTopk;
  auto* out = static_cast<uint16_t*>(a.out) + static_cast<int64_t>(t) * v.hidden;
  if (vectorized) {
    const int c = first + laneId() * kVectorChannels;
    if (c >= v.hidden) return;
    float acc[kVectorChannels] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int k = 0; k < a.topk; ++k) {
      if (v.stashKept[stash + k] < 0) continue;
      const float w = v.stashWeights[stash + k];
      float y[kVectorChannels];
      load8(llCombineRow(v, v.rank, parity, t, k), static_cast<int>(ElementType::kBf16), c, y);
#pragma unroll
      for (int j = 0; j < kVectorChannels; ++j) acc[j] = fmaf(w, y[j], acc[j]);
    }
    *reinterpret_cast<int4*>(out + c) = packBf16x8(acc);
    return;
  }
  for (int c = first + laneId(); c < first + kUnitChannels && c < v.hidden; c += kWarp) {
    float acc = 0.0f;
    for (int k = 0; k < a.topk; ++k) {
      if (v.stashKept[stash + k] < 0) continue;
      const auto* y = reinterpret_cast<const uint16_t*>(llCombineRow(v, v.rank, parity, t, k));
      acc = fmaf(v.stashWeights[stash + k], bf16ToFloat(y[c]), acc);
    }
    out[c] = floatToBf16(acc);
  }
}

__device__ void receiveHalf(const LowLatencyView& v, const ncclMoeLowLatencyCombineArgs_t& a, uint64_t seq) {
  const int parity = static_cast<int>(seq & 1);
  if (!llWaitRecords(v, parity, offsetof(LowLatencyPeerRecord, combineArrived), seq, kPhaseLowLatencyCombineArrival))
    return;
  const bool vectorized = v.hidden % kVectorChannels == 0 && aligned16(a.out);
  const int unitsPerToken = (v.hidden + kUnitChannels - 1) / kUnitChannels;
  const int64_t units = static_cast<int64_t>(a.numTokens) * unitsPerToken;
  for (int64_t u = globalWarp(); u < units; u += warpsInGrid())
    reduceUnit(v, a, parity, static_cast<int>(u / unitsPerToken), static_cast<int>(u % unitsPerToken) * kUnitChannels,
               vectorized);
  if (!llLastBlock(&v.counters->receiveBlocksDone)) return;
  // This parity's landing rows are read: the peers may write them again.
  llSignalPeers(v, parity, offsetof(LowLatencyPeerRecord, combineCredit), seq);
  if (threadIdx.x == 0) v.counters->combineReceived = seq;
}

__global__ void __launch_bounds__(kLowLatencyThreads)
    lowLatencyCombineKernel(LowLatencyView v, ncclMoeLowLatencyCombineArgs_t a, int halves) {
  if (errorRaised(v.domain)) return;  // the communicator already failed (kernels/low_latency_dispatch.cu)
  const uint64_t sendSeq = *reinterpret_cast<volatile uint64_t*>(&v.counters->combineSent) + 1;
  const uint64_t receiveSeq = *reinterpret_cast<volatile uint64_t*>(&v.counters->combineReceived) + 1;
  if (halves & kLowLatencySend) sendHalf(v, a, sendSeq);
  if (halves & kLowLatencyReceive) receiveHalf(v, a, receiveSeq);
}

}  // namespace

cudaError_t launchLowLatencyCombine(const LowLatencyView& view, const ncclMoeLowLatencyCombineArgs_t& args,
                                    LowLatencyHalves halves, int maxBlocks, cudaStream_t stream) {
  // Send: about T x K rows arrive per rank on average; receive: the units of this rank's tokens.
  const int64_t sendUnits = static_cast<int64_t>(view.maxTokens) * view.maxTopk;
  const int64_t receiveUnits =
      static_cast<int64_t>(args.numTokens) * ((view.hidden + kUnitChannels - 1) / kUnitChannels);
  const int64_t units = std::max(halves & kLowLatencySend ? sendUnits : 0, halves & kLowLatencyReceive ? receiveUnits : 0);
  const int64_t wanted = (units + kLowLatencyWarpsPerBlock - 1) / kLowLatencyWarpsPerBlock;
  const int blocks = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(wanted, maxBlocks)));
  lowLatencyCombineKernel<<<blocks, kLowLatencyThreads, 0, stream>>>(view, args, static_cast<int>(halves));
  return cudaGetLastError();
}

}  // namespace nccl_moe
