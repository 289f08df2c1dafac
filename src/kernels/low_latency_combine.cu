// Low-latency combine (docs/low_latency.md sections 4, 5 and 6): one kernel that runs the send half,
// the receive half or both; with several domains the host runs the halves on their own and the
// receive half as two kernels (relay, then sum) with the partials' network group between them.
//   send     a warp per received row (l, i < recvCount[l]) writes y's row into combine landing row
//            (token, slot) of its source rank (recvSrcInfo) when the source is in this domain, else
//            into relay row (source domain, token, slot) of the source's rail peer here; this rank's
//            own ids and weights are stashed for its receive half (so the caller may overwrite them
//            once the send half has run); with several domains the weights of this rank's tokens
//            are staged for each other domain, with the slots whose experts live there (the tail's
//            flags); the last block releases this rank's arrival at every domain peer.
//   relay    (two hops) waits for the domain peers' arrivals and checks the weights' tails; per
//            relayed token with a slot here and channel: P = +0, P = fmaf(w_k, row(n, t, k), P) over
//            those slots in slot order, bf16(P) into the network combine send region.
//   receive  waits for every domain peer's arrival, then per token and channel. One domain: acc = +0,
//            acc = fmaf(w_k, row(t, k), acc) over the kept slots in slot order, out = bf16(acc).
//            Several: the node partial of each domain holding a kept slot, in ascending domain
//            order (the own one formed here like the relay's, the others landed from the rail
//            peers), summed in fp32 from the first, out = bf16(sum) (section 5.3). Bit for bit the CPU
//            oracle. The last block credits every domain peer.
#include <algorithm>

#include "kernels/block_scan.cuh"
#include "kernels/fp8_row.cuh"  // load8, unpackBf16x8
#include "kernels/launch.h"   // cappedGrid
#include "kernels/low_latency_device.cuh"
#include "misc/launch_error.h"

namespace nccl_moe {

namespace {

// ---- Send half ----------------------------------------------------------------------------------

// The domain of expert e's rank (e >= 0). Ids outside [0, E) are undefined use in combine (dispatch
// refuses them); clamped so that the stash and the weights' flags still agree.
__device__ __forceinline__ int expertDomain(const LowLatencyView& v, int64_t e) {
  const int64_t domain = e / v.localExperts / v.domain.localRanks;
  return static_cast<int>(domain < v.domain.domains ? domain : v.domain.domains - 1);
}

// Received rows of every local expert, spread over the grid's warps as one index space (the
// segments follow each other), so that many small segments still use every warp. Each block reads
// the counts of a tile of experts at once and scans them (one round trip per tile, not one per
// expert); a warp finds its row's expert by a binary search of the tile's starts.
constexpr int kCountTile = kLowLatencyThreads;

__device__ void sendRows(const LowLatencyView& v, const ncclMoeLowLatencyCombineArgs_t& a, int parity) {
  __shared__ int64_t tileStart[kCountTile + 1];
  const int64_t warps = warpsInGrid(), me = globalWarp();
  const size_t rowBytes = static_cast<size_t>(v.hidden) * 2;
  const int D = v.domain.localRanks, base = llDomainBase(v);
  int64_t before = 0;  // rows of the tiles below this one
  for (int l0 = 0; l0 < v.localExperts; l0 += kCountTile) {
    const int experts = min(kCountTile, v.localExperts - l0);
    const int64_t rows = blockExclusiveScanOf<kLowLatencyThreads>(
        experts,
        [&](int j) {
          const int64_t count = a.recvCount[l0 + j];
          return count < 0 ? int64_t{0} : count > v.segmentRows ? v.segmentRows : count;
        },
        [&](int j, int64_t start, int64_t) { tileStart[j] = start; });
    if (threadIdx.x == 0) tileStart[experts] = rows;
    __syncthreads();
    int64_t first = (me - before) % warps;
    if (first < 0) first += warps;
    for (int64_t r = first; r < rows; r += warps) {
      int lo = 0, hi = experts - 1;  // the last tile expert whose rows start at or before r
      while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (tileStart[mid] <= r) lo = mid; else hi = mid - 1;
      }
      const int64_t row = static_cast<int64_t>(l0 + lo) * v.segmentRows + (r - tileStart[lo]);
      const int32_t s = a.recvSrcInfo[row * 3], t = a.recvSrcInfo[row * 3 + 1], k = a.recvSrcInfo[row * 3 + 2];
      // Source info from elsewhere than this layout's dispatch is undefined use; it must still not
      // write outside the landing rows.
      if (s < 0 || s >= v.ranks || t < 0 || t >= v.maxTokens || k < 0 || k >= v.maxTopk) continue;
      const int sourceDomain = s / D;
      uint8_t* dst = sourceDomain == v.domain.domain ? llCombineRow(v, s, parity, t, k)
                                                     : llRelayRow(v, base + s % D, parity, sourceDomain, t, k);
      warpCopyBytes(dst, static_cast<const uint8_t*>(a.y) + row * rowBytes, rowBytes);
    }
    before += rows;
    __syncthreads();  // tileStart is rewritten by the next tile
  }
}

// This rank's ids and weights of the call, for its receive half: per slot the domain of its expert
// + 1 (-1: a masked slot), and its weight.
__device__ void stashOwnSlots(const LowLatencyView& v, const ncclMoeLowLatencyCombineArgs_t& a, int parity) {
  const int64_t entries = static_cast<int64_t>(a.numTokens) * a.topk;
  const int64_t threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < entries; i += threads) {
    const int t = static_cast<int>(i / a.topk), k = static_cast<int>(i % a.topk);
    const int64_t at = (static_cast<int64_t>(parity) * v.maxTokens + t) * v.maxTopk + k;
    const int64_t e = a.topkIdx[i];
    const bool kept = e >= 0;
    const int domain = kept ? expertDomain(v, e) : 0;
    v.stashKept[at] = kept ? domain + 1 : -1;
    v.stashWeights[at] = kept && a.weights != nullptr ? a.weights[i] : 1.0f;
  }
}

// Two hops: this rank's weights for each other domain n (network weights send region, token t:
// the K weights) and the tail's flags (slot k of token t kept with its expert in n).
__device__ void stageWeights(const LowLatencyView& v, const ncclMoeLowLatencyCombineArgs_t& a) {
  // Every flag up to maxTopk: the relay reads them all, and slots >= K must not keep a stale 1.
  const int M = v.domain.domains;
  const int64_t perDomain = static_cast<int64_t>(a.numTokens) * v.maxTopk;
  const int64_t entries = (M - 1) * perDomain;
  const int64_t threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < entries; u += threads) {
    const int j = static_cast<int>(u / perDomain);
    const int n = j < v.domain.domain ? j : j + 1;
    const int t = static_cast<int>(u % perDomain / v.maxTopk), k = static_cast<int>(u % v.maxTopk);
    const int64_t i = static_cast<int64_t>(t) * a.topk + k;
    const int64_t e = k < a.topk ? a.topkIdx[i] : -1;
    const bool here = e >= 0 && expertDomain(v, e) == n;
    auto* weights = reinterpret_cast<float*>(llNetMessage(v, v.regions.netWeightsSend, n, v.regions.weightsBytes) +
                                             t * v.regions.weightsBytes);
    weights[k] = here && a.weights != nullptr ? a.weights[i] : 1.0f;
    auto* flags = reinterpret_cast<int8_t*>(llNetTail(v, kLowLatencyNetWeights, 0, n) + 1);
    flags[static_cast<int64_t>(t) * v.maxTopk + k] = here ? 1 : 0;
  }
}

__device__ void sendHalf(const LowLatencyView& v, const ncclMoeLowLatencyCombineArgs_t& a, uint64_t seq) {
  const int parity = static_cast<int>(seq & 1);
  if (!llWaitDomainRecords(v, parity, offsetof(LowLatencyPeerRecord, combineCredit), seq > 2 ? seq - 2 : 0,
                           kPhaseLowLatencyCombineCredit))
    return;
  llStamp(v, kTraceCombine, kTraceCredited, blockIdx.x == 0);
  sendRows(v, a, parity);
  llStamp(v, kTraceCombine, kTraceBlockCopied, blockIdx.x == 0);
  stashOwnSlots(v, a, parity);
  if (v.domain.domains > 1) stageWeights(v, a);
  llStampBlockDone(v, kTraceCombine, kTraceBlockSent);
  if (!llLastBlock(&v.counters->sendBlocksDone)) return;
  llStamp(v, kTraceCombine, kTraceRowsSent, true);
  for (int n = threadIdx.x; n < v.domain.domains; n += blockDim.x) {
    if (n == v.domain.domain) continue;
    LowLatencyNetTail* tail = llNetTail(v, kLowLatencyNetWeights, 0, n);
    tail->sequence = seq;
    tail->tokens = a.numTokens;
    tail->topk = a.topk;
  }
  llSignalPeers(v, parity, offsetof(LowLatencyPeerRecord, combineArrived), seq);
  llStamp(v, kTraceCombine, kTraceRecordSent, true);
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

// Kept slots whose rows one lane has in flight at once in the reduction: a top-8 token's rows in
// one round trip (4 took two).
constexpr int kReduceBatch = 8;

// Slot k of token t as this rank's send half stashed it: kept (its expert's domain + 1 > 0) and its
// weight (1 for the unweighted combine).
struct SlotWeight {
  bool kept = false;
  float weight = 0.0f;
};

__device__ __forceinline__ SlotWeight slotWeightOf(const LowLatencyView& v, int parity, int t, int k, int topk) {
  const int64_t at = (static_cast<int64_t>(parity) * v.maxTokens + t) * v.maxTopk + k;
  SlotWeight slot;
  slot.kept = k < topk && v.stashKept[at] >= 0;
  slot.weight = slot.kept ? v.stashWeights[at] : 0.0f;
  return slot;
}

// Vector path: acc[8] (channels c .. c + 7 of this lane) += w_k * row(t, k) for the kept slots of
// [k0, k0 + 32), lane b holding slot k0 + b; their rows are loaded kReduceBatch at a time before
// their fmaf chain, which keeps the slot order.
__device__ void accumulateSlots(const LowLatencyView& v, int parity, int t, int k0, int c, SlotWeight slot,
                                float* acc) {
  for (uint32_t pending = __ballot_sync(0xFFFFFFFFu, slot.kept); pending != 0;) {
    int4 raw[kReduceBatch];
    float w[kReduceBatch];
    bool valid[kReduceBatch];
#pragma unroll
    for (int j = 0; j < kReduceBatch; ++j) {
      valid[j] = pending != 0;
      const int b = valid[j] ? __ffs(pending) - 1 : 0;
      pending &= pending - 1;
      w[j] = __shfl_sync(0xFFFFFFFFu, slot.weight, b);
      raw[j] = make_int4(0, 0, 0, 0);
      if (valid[j] && c < v.hidden)
        raw[j] = *reinterpret_cast<const int4*>(
            reinterpret_cast<const uint16_t*>(llCombineRow(v, v.rank, parity, t, k0 + b)) + c);
    }
#pragma unroll
    for (int j = 0; j < kReduceBatch; ++j) {
      if (!valid[j]) continue;
      float y[kVectorChannels];
      unpackBf16x8(raw[j], y);
#pragma unroll
      for (int e = 0; e < kVectorChannels; ++e) acc[e] = fmaf(w[j], y[e], acc[e]);
    }
  }
}

// out[t] for channels [first, first + kUnitChannels): the fmaf chain in slot order, from +0.
__device__ void reduceUnit(const LowLatencyView& v, const ncclMoeLowLatencyCombineArgs_t& a, int parity, int t,
                           int first, bool vectorized) {
  const int64_t stash = (static_cast<int64_t>(parity) * v.maxTokens + t) * v.maxTopk;
  auto* out = static_cast<uint16_t*>(a.out) + static_cast<int64_t>(t) * v.hidden;
  if (vectorized) {
    // Lane k holds slot k's flag and weight (one round trip for all slots), then the rows.
    const int c = first + laneId() * kVectorChannels;
    float acc[kVectorChannels] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int k0 = 0; k0 < a.topk; k0 += kWarp)
      accumulateSlots(v, parity, t, k0, c, slotWeightOf(v, parity, t, k0 + laneId(), a.topk), acc);
    if (c < v.hidden) *reinterpret_cast<int4*>(out + c) = packBf16x8(acc);
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

// One domain, vector path, K <= 32 (every slot in one lane): each warp reduces a contiguous range
// of units, so consecutive units are mostly the same token's and its slots' flags and weights are
// read once per token, not once per unit. The same sums as reduceUnit (same order, same bits).
__device__ void reduceUnitRange(const LowLatencyView& v, const ncclMoeLowLatencyCombineArgs_t& a, int parity,
                                int unitsPerToken, int64_t units) {
  const int64_t warps = warpsInGrid(), perWarp = (units + warps - 1) / warps;
  const int64_t begin = min(units, globalWarp() * perWarp), end = min(units, begin + perWarp);
  int token = -1;
  SlotWeight slot;
  for (int64_t u = begin; u < end; ++u) {
    const int t = static_cast<int>(u / unitsPerToken);
    if (t != token) {
      slot = slotWeightOf(v, parity, t, laneId(), a.topk);
      token = t;
    }
    const int c = static_cast<int>(u % unitsPerToken) * kUnitChannels + laneId() * kVectorChannels;
    float acc[kVectorChannels] = {0, 0, 0, 0, 0, 0, 0, 0};
    accumulateSlots(v, parity, t, 0, c, slot, acc);
    if (c < v.hidden) *reinterpret_cast<int4*>(static_cast<uint16_t*>(a.out) + static_cast<int64_t>(t) * v.hidden + c) =
        packBf16x8(acc);
  }
}

// ---- Two hops: node partials ---------------------------------------------------------------------

// A lane's channels of a unit: 8 consecutive ones on the vector path, else 8 spaced a warp apart.
__device__ __forceinline__ void loadUnit(const uint8_t* row, int first, bool vectorized, int hidden, float* y) {
  if (vectorized) {
    const int c = first + laneId() * kVectorChannels;
    if (c < hidden) load8(row, static_cast<int>(ElementType::kBf16), c, y);
    return;
  }
  const auto* r = reinterpret_cast<const uint16_t*>(row);
#pragma unroll
  for (int j = 0; j < kVectorChannels; ++j) {
    const int c = first + laneId() + kWarp * j;
    y[j] = c < hidden ? bf16ToFloat(r[c]) : 0.0f;
  }
}

__device__ __forceinline__ void storeUnit(uint16_t* out, int first, bool vectorized, int hidden, const float* v) {
  if (vectorized) {
    const int c = first + laneId() * kVectorChannels;
    if (c < hidden) *reinterpret_cast<int4*>(out + c) = packBf16x8(v);
    return;
  }
#pragma unroll
  for (int j = 0; j < kVectorChannels; ++j) {
    const int c = first + laneId() + kWarp * j;
    if (c < hidden) out[c] = floatToBf16(v[j]);
  }
}

// The node partial of relayed token t of domain n (its slots here, in slot order, from +0), rounded
// to BF16, into the network combine send region.
__device__ void relayUnit(const LowLatencyView& v, int parity, int n, int t, int first, bool vectorized) {
  const int8_t* flags = reinterpret_cast<const int8_t*>(llNetTail(v, kLowLatencyNetWeights, 1, n) + 1) +
                        static_cast<int64_t>(t) * v.maxTopk;
  const auto* weights = reinterpret_cast<const float*>(
      llNetMessage(v, v.regions.netWeightsRecv, n, v.regions.weightsBytes) + t * v.regions.weightsBytes);
  float acc[kVectorChannels] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int k = 0; k < v.maxTopk; ++k) {
    if (flags[k] == 0) continue;
    const float w = weights[k];
    float y[kVectorChannels];
    loadUnit(llRelayRow(v, v.rank, parity, n, t, k), first, vectorized, v.hidden, y);
#pragma unroll
    for (int j = 0; j < kVectorChannels; ++j) acc[j] = fmaf(w, y[j], acc[j]);
  }
  auto* out = reinterpret_cast<uint16_t*>(llNetMessage(v, v.regions.netCombineSend, n, v.regions.combineRowBytes) +
                                          t * v.regions.combineRowBytes);
  storeUnit(out, first, vectorized, v.hidden, acc);
}

// Whether relayed token t of domain n has a slot here (its tail's flags).
__device__ __forceinline__ bool relayed(const LowLatencyView& v, int n, int t) {
  const int8_t* flags = reinterpret_cast<const int8_t*>(llNetTail(v, kLowLatencyNetWeights, 1, n) + 1) +
                        static_cast<int64_t>(t) * v.maxTopk;
  bool any = false;
  for (int k = 0; k < v.maxTopk; ++k) any = any || flags[k] != 0;
  return any;
}

__device__ void relayHalf(const LowLatencyView& v, uint64_t seq) {
  const int parity = static_cast<int>(seq & 1);
  // The relay rows come from the domain peers' send halves, the weights from the network group.
  if (!llWaitDomainRecords(v, parity, offsetof(LowLatencyPeerRecord, combineArrived), seq,
                           kPhaseLowLatencyCombineArrival))
    return;
  if (!llRailPeersSent(v, kLowLatencyNetWeights, seq, kPhaseLowLatencyCombineWeights)) return;
  const bool vectorized = v.hidden % kVectorChannels == 0;  // LL buffer rows are 16-byte aligned
  const int unitsPerToken = (v.hidden + kUnitChannels - 1) / kUnitChannels;
  const int64_t units = static_cast<int64_t>(v.domain.domains - 1) * v.maxTokens * unitsPerToken;
  for (int64_t u = globalWarp(); u < units; u += warpsInGrid()) {
    const int first = static_cast<int>(u % unitsPerToken) * kUnitChannels;
    const int t = static_cast<int>(u / unitsPerToken % v.maxTokens);
    const int j = static_cast<int>(u / unitsPerToken / v.maxTokens);
    const int n = j < v.domain.domain ? j : j + 1;
    if (t >= llClampTokens(v, llNetTail(v, kLowLatencyNetWeights, 1, n)->tokens) || !relayed(v, n, t)) continue;
    relayUnit(v, parity, n, t, first, vectorized);
  }
  if (!llLastBlock(&v.counters->relayBlocksDone)) return;
  for (int n = threadIdx.x; n < v.domain.domains; n += blockDim.x)
    if (n != v.domain.domain) llNetTail(v, kLowLatencyNetPartials, 0, n)->sequence = seq;
}

// out[t] for a unit of channels with several domains: the node partials in ascending domain order
// (section 5.3), the own domain's from the combine landing rows, the others' landed from the rail
// peers.
__device__ void sumPartialsUnit(const LowLatencyView& v, const ncclMoeLowLatencyCombineArgs_t& a, int parity, int t,
                                int first, bool vectorized) {
  const int64_t stash = (static_cast<int64_t>(parity) * v.maxTokens + t) * v.maxTopk;
  float total[kVectorChannels] = {0, 0, 0, 0, 0, 0, 0, 0};
  bool any = false;
  for (int m = 0; m < v.domain.domains; ++m) {
    bool here = false;
    for (int k = 0; k < a.topk; ++k) here = here || v.stashKept[stash + k] == m + 1;
    if (!here) continue;
    float partial[kVectorChannels];
    if (m == v.domain.domain) {
      float acc[kVectorChannels] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int k = 0; k < a.topk; ++k) {
        if (v.stashKept[stash + k] != m + 1) continue;
        const float w = v.stashWeights[stash + k];
        float y[kVectorChannels];
        loadUnit(llCombineRow(v, v.rank, parity, t, k), first, vectorized, v.hidden, y);
#pragma unroll
        for (int j = 0; j < kVectorChannels; ++j) acc[j] = fmaf(w, y[j], acc[j]);
      }
#pragma unroll
      for (int j = 0; j < kVectorChannels; ++j) partial[j] = bf16ToFloat(floatToBf16(acc[j]));
    } else {
      loadUnit(llNetMessage(v, v.regions.netCombineRecv, m, v.regions.combineRowBytes) + t * v.regions.combineRowBytes,
               first, vectorized, v.hidden, partial);
    }
#pragma unroll
    for (int j = 0; j < kVectorChannels; ++j) total[j] = any ? total[j] + partial[j] : partial[j];
    any = true;
  }
  storeUnit(static_cast<uint16_t*>(a.out) + static_cast<int64_t>(t) * v.hidden, first, vectorized, v.hidden, total);
}

__device__ void receiveHalf(const LowLatencyView& v, const ncclMoeLowLatencyCombineArgs_t& a, uint64_t seq,
                            int halves) {
  const int parity = static_cast<int>(seq & 1);
  if (!llWaitDomainRecords(v, parity, offsetof(LowLatencyPeerRecord, combineArrived), seq,
                           kPhaseLowLatencyCombineArrival))
    return;
  llStamp(v, kTraceCombine, kTraceArrived, blockIdx.x == 0);
  const bool twoHop = v.domain.domains > 1;
  if (twoHop && !llRailPeersSent(v, kLowLatencyNetPartials, seq, kPhaseLowLatencyCombinePartials)) return;
  const bool vectorized = v.hidden % kVectorChannels == 0 && aligned16(a.out);
  const int unitsPerToken = (v.hidden + kUnitChannels - 1) / kUnitChannels;
  const int64_t units = static_cast<int64_t>(a.numTokens) * unitsPerToken;
  if (!twoHop && vectorized && a.topk <= kWarp)
    reduceUnitRange(v, a, parity, unitsPerToken, units);
  else
    for (int64_t u = globalWarp(); u < units; u += warpsInGrid()) {
      const int t = static_cast<int>(u / unitsPerToken), first = static_cast<int>(u % unitsPerToken) * kUnitChannels;
      if (twoHop)
        sumPartialsUnit(v, a, parity, t, first, vectorized);
      else
        reduceUnit(v, a, parity, t, first, vectorized);
    }
  if (!llLastBlock(&v.counters->receiveBlocksDone)) return;
  llStamp(v, kTraceCombine, kTraceReceived, true);
  // This parity's landing (and relay) rows are read: the domain peers may write them again.
  llSignalPeers(v, parity, offsetof(LowLatencyPeerRecord, combineCredit), seq);
  if (threadIdx.x == 0) v.counters->combineReceived = seq;
  llTraceCallDone(v, kTraceCombine, halves);
}

__global__ void __launch_bounds__(kLowLatencyThreads)
    lowLatencyCombineKernel(LowLatencyView v, ncclMoeLowLatencyCombineArgs_t a, int halves) {
  if (blockErrorRaised(v.domain)) return;  // the communicator already failed (kernels/low_latency_dispatch.cu)
  llStampStart(v, kTraceCombine);
  const uint64_t sendSeq = *reinterpret_cast<volatile uint64_t*>(&v.counters->combineSent) + 1;
  const uint64_t receiveSeq = *reinterpret_cast<volatile uint64_t*>(&v.counters->combineReceived) + 1;
  if (halves & kLowLatencySend) sendHalf(v, a, sendSeq);
  if (halves & kLowLatencyReceive) receiveHalf(v, a, receiveSeq, halves);
}

__global__ void __launch_bounds__(kLowLatencyThreads) lowLatencyCombineRelayKernel(LowLatencyView v) {
  if (blockErrorRaised(v.domain)) return;
  relayHalf(v, *reinterpret_cast<volatile uint64_t*>(&v.counters->combineReceived) + 1);
}

}  // namespace

cudaError_t launchLowLatencyCombineRelay(const LowLatencyView& view, const ncclMoeLowLatencyCombineArgs_t& args,
                                         int maxBlocks, cudaStream_t stream) {
  discardEarlierLaunchError();
  (void)args;  // the relay reads what the rail peers sent, not this rank's arguments
  const int64_t units = static_cast<int64_t>(view.domain.domains - 1) * view.maxTokens *
                        ((view.hidden + kUnitChannels - 1) / kUnitChannels);
  const int blocks = cappedGrid(units, kLowLatencyWarpsPerBlock, LaunchBudget{maxBlocks});
  lowLatencyCombineRelayKernel<<<blocks, kLowLatencyThreads, 0, stream>>>(view);
  return cudaGetLastError();
}

cudaError_t launchLowLatencyCombine(const LowLatencyView& view, const ncclMoeLowLatencyCombineArgs_t& args,
                                    LowLatencyHalves halves, int maxBlocks, cudaStream_t stream) {
  discardEarlierLaunchError();
  // Send: about T x K rows arrive per rank on average (this rank's T standing in for the sources';
  // the warps loop over any more); receive: the units of this rank's tokens. Only the blocks the work
  // needs (see the dispatch's launch).
  const int64_t sendUnits = static_cast<int64_t>(std::max(1, args.numTokens)) * view.maxTopk;
  const int64_t receiveUnits =
      static_cast<int64_t>(args.numTokens) * ((view.hidden + kUnitChannels - 1) / kUnitChannels);
  const int64_t units = std::max(halves & kLowLatencySend ? sendUnits : 0, halves & kLowLatencyReceive ? receiveUnits : 0);
  const int blocks = cappedGrid(units, kLowLatencyWarpsPerBlock, LaunchBudget{maxBlocks});
  lowLatencyCombineKernel<<<blocks, kLowLatencyThreads, 0, stream>>>(view, args, static_cast<int>(halves));
  return cudaGetLastError();
}

}  // namespace nccl_moe
