// Low-latency dispatch (docs/low_latency.md sections 3, 5 and 6): one kernel that runs the send
// half, the receive half or both (with several domains the host runs each half on its own, the
// network group between them).
//   send     every block checks this rank's ids (the first fault in (token, slot) order) and, in
//            one warp, numbers each (t, k) among this rank's rows of its expert in token order
//            and counts the rows per expert; meanwhile a warp per piece of each token's row reads
//            it once (BF16, or FP8 E4M3 quantised here once) and writes it into slot (this rank,
//            token) of every destination's landing region whose rank owns one of the token's
//            experts, and with several domains into slot t of each other domain's network message
//            that needs it; then one warp per (token, slot) writes the headers (ids, each row's
//            number, t + 1; 0 in a network slot the token does not need). The last block writes
//            this rank's rows per local expert into every domain peer's counts region, its record
//            (T, K, the fault), the network tails (the counts of the other domains' ranks), and
//            releases its arrival.
//   relay    (two hops, first in the receive half, after the network group landed) every block
//            checks the tails' sequence numbers (a stale one: the rail peer had failed); a warp per
//            (source domain, token, rank of this domain) copies the landed slot into that rank's
//            landing slot (rail peer, token) when the token selects one of its experts; the last
//            block writes the rail peers' counts and records (T, K, fault) into every domain peer
//            and releases their arrivals.
//   receive  waits for the arrival of every source rank (all R, through the relays); every block
//            judges the records alike (the lowest rank with a fault or a K other than rank 0's);
//            without one, a warp per landing slot copies the row to each of its local experts'
//            segments at (rows of lower sources, from the counts) + (the row's number, from the
//            header): sorted by (source rank, token), with no counting and no grid barrier here.
//            Every consumed slot is emptied; the last block credits every domain peer.
#include <algorithm>
#include <climits>

#include "kernels/block_scan.cuh"
#include "kernels/fp8_row.cuh"
#include "kernels/launch.h"  // cappedGrid, allowSharedBytes
#include "kernels/low_latency_device.cuh"
#include "kernels/send_pieces.h"
#include "misc/launch_error.h"
#include "plan/routing.h"

namespace nccl_moe {

namespace {

struct IdFault {
  int32_t kind = 0;  // RoutingFault
  int32_t token = -1;
  int32_t slot = -1;
  int64_t value = 0;
};

// The first bad id of this rank in (token, slot) order: an id outside [-1, E), or an id a lower
// slot of the same token holds. Every block finds the same one (T x K ids at most 1024 x maxTopk).
__device__ IdFault findIdFault(const LowLatencyView& v, const int64_t* ids, int tokens, int topk) {
  __shared__ int first;
  if (threadIdx.x == 0) first = INT_MAX;
  __syncthreads();
  for (int i = threadIdx.x; i < tokens * topk; i += blockDim.x) {
    const int64_t e = ids[i];
    if (e == -1) continue;
    bool bad = e < 0 || e >= v.experts;
    for (int j = i - i % topk; !bad && j < i; ++j) bad = ids[j] == e;
    if (bad) atomicMin(&first, i);
  }
  __syncthreads();
  IdFault fault;
  if (first != INT_MAX) {
    const int64_t e = ids[first];
    fault.kind = static_cast<int32_t>(e < 0 || e >= v.experts ? RoutingFault::kExpertOutOfRange
                                                               : RoutingFault::kDuplicateExpert);
    fault.token = first / topk;
    fault.slot = first % topk;
    fault.value = e;
  }
  __syncthreads();
  return fault;
}

// What a dispatch tells the receivers about its source's call: T, K and the first routing fault
// (the same fields in a peer record and in a network tail).
template <class Record>
__device__ __forceinline__ void writeCallFields(Record* r, int32_t tokens, int32_t topk, const IdFault& fault) {
  r->tokens = tokens;
  r->topk = topk;
  r->faultKind = fault.kind;
  r->faultToken = fault.token;
  r->faultSlot = fault.slot;
  r->faultValue = fault.value;
}

// ---- Send half ----------------------------------------------------------------------------------

// Whether a token (its K ids, int64 from the caller or int32 from a slot header) selects an expert of
// a rank in [first, first + count): the whole warp answers.
template <class Id>
__device__ __forceinline__ bool selectsRanks(const LowLatencyView& v, const Id* ids, int topk, int first, int count) {
  bool hit = false;
  for (int k = laneId(); k < topk; k += kWarp) {
    const int64_t e = ids[k];
    const int64_t owner = e / v.localExperts;
    hit = hit || (e >= 0 && owner >= first && owner < first + count);
  }
  return __any_sync(0xFFFFFFFFu, hit);
}

// ---- Numbering the rows (the send half's shared memory) -------------------------------------------

// Per expert a running count of this rank's rows and the lanes of the current round that hold it,
// then position[t][k]: row (t, k)'s number among this rank's rows of its expert, in token order.
struct RowNumbers {
  int32_t* running;   // [E]; after numberRows: this rank's rows per expert
  uint32_t* lanes;    // [E]
  int16_t* position;  // [T][K] (T <= 1024)
};

__device__ __forceinline__ RowNumbers rowNumbersIn(uint8_t* shared, const LowLatencyView& v) {
  RowNumbers n;
  n.running = reinterpret_cast<int32_t*>(shared);
  n.lanes = reinterpret_cast<uint32_t*>(n.running + v.experts);
  n.position = reinterpret_cast<int16_t*>(n.lanes + v.experts);
  return n;
}

// One warp numbers every (t, k) of this rank, 32 tokens a round (lane = token): a row's number is
// the rows of its expert in earlier rounds plus the lanes below it in this round that hold the
// expert. The ids are valid (findIdFault found none bad: no expert twice in a token), so each
// lane holds an expert at most once and the lowest lane that holds it advances its count.
__device__ void numberRows(const LowLatencyView& v, const ncclMoeLowLatencyDispatchArgs_t& a, const RowNumbers& n) {
  for (int e = laneId(); e < v.experts; e += kWarp) {
    n.running[e] = 0;
    n.lanes[e] = 0;
  }
  __syncwarp();
  const uint32_t lane = 1u << laneId(), below = lane - 1u;
  for (int first = 0; first < a.numTokens; first += kWarp) {
    const int t = first + laneId();
    const int64_t* ids = a.topkIdx + static_cast<int64_t>(t) * a.topk;
    const bool mine = t < a.numTokens;
    for (int k = 0; k < a.topk; ++k)
      if (mine && ids[k] >= 0) atomicOr(&n.lanes[ids[k]], lane);
    __syncwarp();
    for (int k = 0; k < a.topk; ++k)
      if (mine && ids[k] >= 0)
        n.position[t * a.topk + k] = static_cast<int16_t>(n.running[ids[k]] + __popc(n.lanes[ids[k]] & below));
    __syncwarp();  // every number of the round is taken before any count advances
    for (int k = 0; k < a.topk; ++k) {
      const int64_t e = mine ? ids[k] : -1;
      if (e < 0) continue;
      const uint32_t holders = n.lanes[e];
      if ((holders & below) == 0) n.running[e] += __popc(holders);
    }
    __syncwarp();
    for (int k = 0; k < a.topk; ++k)
      if (mine && ids[k] >= 0) n.lanes[ids[k]] = 0;
    __syncwarp();
  }
}

// ---- Send half ----------------------------------------------------------------------------------

// Slot header of token t: its ids, each row's number (-1 for a masked slot), and t + 1 last.
__device__ void writeSlotHeader(const LowLatencyView& v, const ncclMoeLowLatencyDispatchArgs_t& a, uint8_t* slot,
                                int t, const RowNumbers& n) {
  auto* header = reinterpret_cast<int32_t*>(slot);
  const int64_t* ids = a.topkIdx + static_cast<int64_t>(t) * a.topk;
  for (int k = laneId(); k < a.topk; k += kWarp) {
    const int64_t e = ids[k];
    header[1 + k] = static_cast<int32_t>(e);
    header[1 + v.maxTopk + k] = e >= 0 ? n.position[t * a.topk + k] : -1;
  }
  __syncwarp();
  if (laneId() == 0) header[0] = t + 1;
}

// Token t's row into a slot: a BF16 copy, or FP8 E4M3 quantised here (the same bits every time).
__device__ void writeSlotRow(const LowLatencyView& v, const ncclMoeLowLatencyDispatchArgs_t& a, uint8_t* slot, int t) {
  const size_t xRowBytes = static_cast<size_t>(v.hidden) * 2;
  const uint8_t* x = static_cast<const uint8_t*>(a.x) + static_cast<size_t>(t) * xRowBytes;
  uint8_t* row = slot + v.regions.headerBytes;
  if (v.fp8)
    warpQuantizeRowE4m3(x, static_cast<int>(ElementType::kBf16), v.hidden, v.powerOfTwoScales != 0, row,
                        reinterpret_cast<float*>(row + v.regions.scaleOffset));
  else
    warpCopyBytes(row, x, xRowBytes);
}

// Every (token, rank of this domain or other domain) unit of the send half, spread over the
// grid's warps: write(slot, t) for each slot the token needs (the rank owns one of its experts; the
// other domain holds one), skip(slot) for a network slot it does not need.
template <class Write, class Skip>
__device__ void forEachSendSlot(const LowLatencyView& v, const ncclMoeLowLatencyDispatchArgs_t& a, int parity,
                                Write write, Skip skip) {
  const int D = v.domain.localRanks, M = v.domain.domains, base = llDomainBase(v);
  const int perToken = D + M - 1;
  const int64_t units = static_cast<int64_t>(a.numTokens) * perToken;
  for (int64_t u = globalWarp(); u < units; u += warpsInGrid()) {
    const int t = static_cast<int>(u / perToken), j = static_cast<int>(u % perToken);
    const int64_t* ids = a.topkIdx + static_cast<int64_t>(t) * a.topk;
    if (j < D) {
      if (selectsRanks(v, ids, a.topk, base + j, 1)) write(llDispatchSlot(v, base + j, parity, v.rank, t), t);
      continue;
    }
    const int n = j - D < v.domain.domain ? j - D : j - D + 1;
    uint8_t* slot = llNetMessage(v, v.regions.netDispatchSend, n, v.regions.slotBytes) + t * v.regions.slotBytes;
    if (selectsRanks(v, ids, a.topk, n * D, D))
      write(slot, t);
    else
      skip(slot);
  }
}

// The send units token t needs, as bits j of forEachSendSlot's order (its D ranks of this domain,
// then the M - 1 other domains), for D + M - 1 <= 32: each lane ORs in its ids' bits. The ids are
// checked (no fault), so every one is masked or an expert of some rank.
__device__ uint32_t sendUnitsOf(const LowLatencyView& v, const int64_t* ids, int topk) {
  const int D = v.domain.localRanks, mine = v.domain.domain, base = llDomainBase(v);
  uint32_t bits = 0;
  for (int k = laneId(); k < topk; k += kWarp) {
    const int64_t e = ids[k];
    if (e < 0) continue;
    const int owner = static_cast<int>(e / v.localExperts), domain = owner / D;
    bits |= 1u << (domain == mine ? owner - base : D + (domain < mine ? domain : domain - 1));
  }
  return __reduce_or_sync(0xFFFFFFFFu, bits);
}

// Every token's row into every send slot it needs, a warp per piece of the row (kernels/
// send_pieces.h; as many pieces as keep the grid's warps busy: with one warp per row, at T = 1 one
// warp copied the 14 KiB row in four dependent rounds while the block's other warps waited, and at
// T = 128 half the grid's warps had no token). The piece is read (and with FP8 quantised) once and
// written to each slot, instead of once per slot (a token of top-8 of 256 experts reaches about
// 5.3 of 8 ranks). Lane j holds unit j's slot. More units than lanes (a domain of more than
// 32 - M + 1 ranks): one warp per (token, slot), as the headers go.
__device__ void sendRows(const LowLatencyView& v, const ncclMoeLowLatencyDispatchArgs_t& a, int parity) {
  const int D = v.domain.localRanks, M = v.domain.domains, base = llDomainBase(v);
  if (D + M - 1 > kWarp) {
    forEachSendSlot(v, a, parity, [&](uint8_t* slot, int t) { writeSlotRow(v, a, slot, t); }, [](uint8_t*) {});
    return;
  }
  const int j = laneId();
  const size_t xRowBytes = static_cast<size_t>(v.hidden) * 2;
  const SendPieces pieces = sendPiecesFor(v.hidden, warpsInGrid(), a.numTokens);
  const int64_t units = static_cast<int64_t>(a.numTokens) * pieces.count;
  for (int64_t u = globalWarp(); u < units; u += warpsInGrid()) {
    const int64_t t = u / pieces.count;
    int first = 0;  // warp-uniform
    const int channels = pieceChannels(pieces, v.hidden, static_cast<int>(u % pieces.count), &first);
    if (channels == 0) continue;
    const uint32_t targets = sendUnitsOf(v, a.topkIdx + t * a.topk, a.topk);
    uint8_t* slot = nullptr;
    if (j < D) {
      slot = llDispatchSlot(v, base + j, parity, v.rank, static_cast<int>(t));
    } else if (j < D + M - 1) {
      const int n = j - D < v.domain.domain ? j - D : j - D + 1;
      slot = llNetMessage(v, v.regions.netDispatchSend, n, v.regions.slotBytes) + t * v.regions.slotBytes;
    }
    uint8_t* row = slot == nullptr ? nullptr : slot + v.regions.headerBytes;
    const uint8_t* x = static_cast<const uint8_t*>(a.x) + t * xRowBytes + static_cast<size_t>(first) * 2;
    if (v.fp8) {
      uint8_t* codes = row == nullptr ? nullptr : row + first;
      float* scales =
          row == nullptr ? nullptr : reinterpret_cast<float*>(row + v.regions.scaleOffset) + first / kFp8BlockChannels;
      warpQuantizeRowE4m3ToEach(targets, codes, scales, x, static_cast<int>(ElementType::kBf16), channels,
                                v.powerOfTwoScales != 0);
    } else {
      warpCopyBytesToEach(
          targets,
          [&](int b) {
            return reinterpret_cast<uint8_t*>(__shfl_sync(0xFFFFFFFFu, reinterpret_cast<uintptr_t>(row), b)) +
                   static_cast<size_t>(first) * 2;
          },
          x, static_cast<size_t>(channels) * 2);
    }
  }
}

__device__ void sendHalf(const LowLatencyView& v, const ncclMoeLowLatencyDispatchArgs_t& a, uint64_t seq) {
  extern __shared__ __align__(16) uint8_t shared[];
  const RowNumbers numbers = rowNumbersIn(shared, v);
  const int parity = static_cast<int>(seq & 1);
  const IdFault fault = findIdFault(v, a.topkIdx, a.numTokens, a.topk);
  llStamp(v, kTraceDispatch, kTraceIdsChecked, blockIdx.x == 0);
  // A peer's parity is written again only once it has consumed what this rank wrote there two
  // dispatches ago (normally long done: no wait).
  if (!llWaitDomainRecords(v, parity, offsetof(LowLatencyPeerRecord, dispatchCredit), seq > 2 ? seq - 2 : 0,
                           kPhaseLowLatencyDispatchCredit))
    return;
  llStamp(v, kTraceDispatch, kTraceCredited, blockIdx.x == 0);
  const int D = v.domain.localRanks, M = v.domain.domains, base = llDomainBase(v), L = v.localExperts;
  if (fault.kind == 0) {
    // Every block numbers the rows itself (warp 0, while the others copy rows, which need no
    // numbers); the headers follow once the numbers are there.
    if (warpInBlock() == 0) numberRows(v, a, numbers);
    sendRows(v, a, parity);
    llStamp(v, kTraceDispatch, kTraceBlockCopied, blockIdx.x == 0);
    __syncthreads();
    forEachSendSlot(
        v, a, parity, [&](uint8_t* slot, int t) { writeSlotHeader(v, a, slot, t, numbers); },
        [](uint8_t* slot) {
          if (laneId() == 0) *reinterpret_cast<int32_t*>(slot) = 0;
        });
    llStampBlockDone(v, kTraceDispatch, kTraceBlockSent);
  }
  if (!llLastBlock(&v.counters->sendBlocksDone)) return;
  llStamp(v, kTraceDispatch, kTraceRowsSent, true);
  // This rank's rows per local expert of each rank (after a fault: none), its record, and for each
  // other domain the same counts of that domain's ranks in the network message's tail.
  for (int i = threadIdx.x; i < D * L; i += blockDim.x) {
    const int peer = base + i / L, l = i % L;
    llSourceCounts(v, peer, parity, v.rank)[l] = fault.kind == 0 ? numbers.running[peer * L + l] : 0;
  }
  for (int i = threadIdx.x; i < D; i += blockDim.x)
    writeCallFields(llRecord(v, base + i, parity, v.rank), a.numTokens, a.topk, fault);
  for (int n = 0; n < M; ++n) {
    if (n == v.domain.domain) continue;
    LowLatencyNetTail* tail = llNetTail(v, kLowLatencyNetDispatch, 0, n);
    int32_t* counts = llNetTailCounts(tail);
    for (int i = threadIdx.x; i < D * L; i += blockDim.x)
      counts[i] = fault.kind == 0 ? numbers.running[n * D * L + i] : 0;
    if (threadIdx.x == 0) {
      tail->sequence = seq;
      writeCallFields(tail, a.numTokens, a.topk, fault);
    }
  }
  llSignalPeers(v, parity, offsetof(LowLatencyPeerRecord, dispatchArrived), seq);
  llStamp(v, kTraceDispatch, kTraceRecordSent, true);
  if (threadIdx.x == 0) v.counters->dispatchSent = seq;
}

// ---- Relay (two hops) ---------------------------------------------------------------------------

// The tokens of the rail peers of the other domains, landed in this rank's network receive region,
// into the landing slots of the ranks of this domain that own one of their experts; then the rail
// peers' records there. False after a failure.
__device__ bool relayDispatch(const LowLatencyView& v, int parity, uint64_t seq) {
  if (!llRailPeersSent(v, kLowLatencyNetDispatch, seq, kPhaseLowLatencyDispatchNetwork)) return false;
  const int D = v.domain.localRanks, M = v.domain.domains, base = llDomainBase(v);
  const int64_t units = static_cast<int64_t>(M - 1) * v.maxTokens * D;
  for (int64_t u = globalWarp(); u < units; u += warpsInGrid()) {
    const int i = static_cast<int>(u % D);
    const int t = static_cast<int>(u / D % v.maxTokens);
    const int j = static_cast<int>(u / D / v.maxTokens);
    const int n = j < v.domain.domain ? j : j + 1;
    const LowLatencyNetTail* tail = llNetTail(v, kLowLatencyNetDispatch, 1, n);
    // A faulty source wrote no slot (what its message holds is stale): nothing to fan out.
    if (tail->faultKind != 0 || t >= llClampTokens(v, tail->tokens)) continue;
    const uint8_t* slot = llNetMessage(v, v.regions.netDispatchRecv, n, v.regions.slotBytes) + t * v.regions.slotBytes;
    const auto* header = reinterpret_cast<const int32_t*>(slot);
    if (header[0] != t + 1) continue;
    if (!selectsRanks(v, header + 1, llClampTopk(v, tail->topk), base + i, 1)) continue;
    warpCopyBytes(llDispatchSlot(v, base + i, parity, llRailPeer(v, n), t), slot, v.regions.slotBytes);
  }
  if (!llLastBlock(&v.counters->relayBlocksDone)) return true;
  for (int n = 0; n < M; ++n) {
    if (n == v.domain.domain) continue;
    const LowLatencyNetTail* tail = llNetTail(v, kLowLatencyNetDispatch, 1, n);
    const int source = llRailPeer(v, n);
    const IdFault fault{tail->faultKind, tail->faultToken, tail->faultSlot, tail->faultValue};
    // The source's rows per local expert of each rank here, as its tail brought them.
    const int32_t* counts = llNetTailCounts(tail);
    for (int i = threadIdx.x; i < D * v.localExperts; i += blockDim.x)
      llSourceCounts(v, base + i / v.localExperts, parity, source)[i % v.localExperts] = counts[i];
    for (int i = threadIdx.x; i < D; i += blockDim.x)
      writeCallFields(llRecord(v, base + i, parity, source), tail->tokens, tail->topk, fault);
    llSignalPeersAs(v, parity, offsetof(LowLatencyPeerRecord, dispatchArrived), seq, source);
  }
  return true;
}

// ---- Receive half -------------------------------------------------------------------------------

struct Verdict {
  int rank = -1;  // the lowest rank with a fault or a K other than rank 0's; -1: none
  uint64_t kind = 0;
  int token = -1;
  int slot = -1;
  int64_t value = 0;
  uint64_t expectedTopk = 0;
};

// The same on every rank: every rank reads the same records. The block's threads read the records
// together (one round trip, not one per rank) and keep the lowest rank that has a fault or a K
// other than rank 0's.
__device__ Verdict judge(const LowLatencyView& v, int parity) {
  __shared__ int first;
  if (threadIdx.x == 0) first = INT_MAX;
  __syncthreads();
  const int topk0 = llRecord(v, v.rank, parity, 0)->topk;
  for (int s = threadIdx.x; s < v.ranks; s += blockDim.x) {
    const LowLatencyPeerRecord* r = llRecord(v, v.rank, parity, s);
    if (r->faultKind != 0 || r->topk != topk0) atomicMin(&first, s);
  }
  __syncthreads();
  Verdict verdict;
  if (first != INT_MAX) {
    const LowLatencyPeerRecord* r = llRecord(v, v.rank, parity, first);
    if (r->faultKind != 0)
      verdict = {first, static_cast<uint64_t>(r->faultKind), r->faultToken, r->faultSlot, r->faultValue, 0};
    else
      verdict = {first, kLowLatencyTopkMismatch, -1, -1, r->topk, static_cast<uint64_t>(topk0)};
  }
  return verdict;
}

__device__ __forceinline__ int sourceTokens(const LowLatencyView& v, int parity, int s) {
  const int t = llRecord(v, v.rank, parity, s)->tokens;
  return t < 0 ? 0 : t > v.maxTokens ? v.maxTokens : t;
}

// Slot (s, t) holds this call's row: its header names t (an empty slot holds 0).
__device__ __forceinline__ bool slotFilled(const int32_t* header, int t) {
  return *reinterpret_cast<const volatile int32_t*>(header) == t + 1;
}

// Rows of local expert l from sources below s: where source s's rows of l start in segment l. One
// lane alone (the loads are independent: they travel together).
__device__ __forceinline__ int64_t segmentBase(const LowLatencyView& v, int parity, int s, int l) {
  int64_t sum = 0;
#pragma unroll 8
  for (int below = 0; below < s; ++below) sum += llSourceCounts(v, v.rank, parity, below)[l];
  return sum;
}

// A landed slot's row into its local experts' segments: lane b of the warp holds slot k0 + b's local
// expert l (-1: none here) and row i in segment l. The row is read once for all of them; with FP8
// its scales go into their planes, and every placed row gets its (source, token, slot).
__device__ void placeRow(const LowLatencyView& v, const ncclMoeLowLatencyDispatchArgs_t& a, const uint8_t* row,
                         int k0, int l, int64_t i, int s, int t) {
  const uint32_t hits = __ballot_sync(0xFFFFFFFFu, l >= 0);
  const size_t rowBytes = static_cast<size_t>(v.hidden) * (v.fp8 ? 1 : 2);
  const int64_t outRow = static_cast<int64_t>(l) * v.segmentRows + i;  // lane b's (meaningful where l >= 0)
  auto* recvX = static_cast<uint8_t*>(a.recvX);
  warpCopyBytesToEach(
      hits, [&](int b) { return recvX + __shfl_sync(0xFFFFFFFFu, outRow, b) * static_cast<int64_t>(rowBytes); },
      row, rowBytes);
  for (uint32_t m = hits; m != 0; m &= m - 1) {
    const int b = __ffs(m) - 1;
    const int64_t at = __shfl_sync(0xFFFFFFFFu, outRow, b);
    if (v.fp8) {
      const int64_t segment = __shfl_sync(0xFFFFFFFFu, l, b), inSegment = __shfl_sync(0xFFFFFFFFu, i, b);
      const auto* scales = reinterpret_cast<const float*>(row + v.regions.scaleOffset);
      for (int c = laneId(); c < v.scaleBlocks; c += kWarp)
        a.recvScales[(segment * v.scaleBlocks + c) * v.scalePlaneRows + inSegment] = scales[c];
    }
    if (laneId() < 3) a.recvSrcInfo[at * 3 + laneId()] = laneId() == 0 ? s : laneId() == 1 ? t : k0 + b;
  }
}

// Sources whose token counts a block scans into shared memory (more: every slot is visited).
constexpr int kMaxScannedSources = 1024;

// Warp per landing slot a source can have filled (t < T_s): its row to each of its local experts'
// segments (unless `place` is false: a fault), then the slot emptied. Every block first scans the
// sources' T from their records, so the warps visit sum(T_s) slots, not R x N of them (N is often
// far above a decode step's T). Each lane looks up one top-k slot's place, so a token with several
// experts here pays one round of lookups and one read of its row.
__device__ void placeAndEmpty(const LowLatencyView& v, const ncclMoeLowLatencyDispatchArgs_t& a, int parity,
                              bool place) {
  __shared__ int32_t firstSlot[kMaxScannedSources + 1];  // source s's slots start at firstSlot[s]
  const int L = v.localExperts;
  const bool scanned = v.ranks <= kMaxScannedSources;
  int64_t units = static_cast<int64_t>(v.ranks) * v.maxTokens;
  if (scanned) {
    units = blockExclusiveScanOf<kLowLatencyThreads>(
        v.ranks, [&](int source) { return static_cast<int64_t>(sourceTokens(v, parity, source)); },
        [&](int source, int64_t start, int64_t) { firstSlot[source] = static_cast<int32_t>(start); });
    if (threadIdx.x == 0) firstSlot[v.ranks] = static_cast<int32_t>(units);
    __syncthreads();
  }
  for (int64_t u = globalWarp(); u < units; u += warpsInGrid()) {
    int s = static_cast<int>(u / v.maxTokens), t = static_cast<int>(u % v.maxTokens);
    if (scanned) {
      // The last source whose slots start at or before u: it has some (the next one starts after u).
      int lo = 0, hi = v.ranks - 1;
      while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (firstSlot[mid] <= u) lo = mid; else hi = mid - 1;
      }
      s = lo;
      t = static_cast<int>(u - firstSlot[lo]);
    }
    uint8_t* slot = llDispatchSlot(v, v.rank, parity, s, t);
    auto* header = reinterpret_cast<int32_t*>(slot);
    if (!scanned && t >= sourceTokens(v, parity, s)) continue;
    if (!slotFilled(header, t)) continue;
    for (int k0 = 0; place && k0 < a.topk; k0 += kWarp) {
      const int k = k0 + laneId();
      int l = k < a.topk ? header[1 + k] - v.rank * L : -1;
      if (l < 0 || l >= L) l = -1;  // masked, or another rank's expert
      // Where source s's rows of l start, plus this row's number among them (from its source).
      const int64_t i = l >= 0 ? segmentBase(v, parity, s, l) + header[1 + v.maxTopk + k] : 0;
      placeRow(v, a, slot + v.regions.headerBytes, k0, l, i, s, t);
    }
    __syncwarp();
    if (laneId() == 0) header[0] = 0;
  }
}

__device__ void receiveHalf(const LowLatencyView& v, const ncclMoeLowLatencyDispatchArgs_t& a, uint64_t seq,
                            int halves) {
  const int parity = static_cast<int>(seq & 1);
  if (v.domain.domains > 1 && !relayDispatch(v, parity, seq)) return;
  // Every source rank's arrival: from itself in this domain, from its relay otherwise.
  if (!llWaitRecords(v, parity, offsetof(LowLatencyPeerRecord, dispatchArrived), seq, kPhaseLowLatencyDispatchArrival,
                     0, v.ranks))
    return;
  llStamp(v, kTraceDispatch, kTraceArrived, blockIdx.x == 0);
  const Verdict verdict = judge(v, parity);
  llStamp(v, kTraceDispatch, kTraceJudged, blockIdx.x == 0);
  const bool place = verdict.rank < 0;
  // The sources numbered their rows and counted them per local expert: no counting here, no
  // meeting of the blocks.
  if (place && blockIdx.x == 0)
    for (int l = threadIdx.x; l < v.localExperts; l += blockDim.x) {
      int32_t count = 0;
#pragma unroll 8
      for (int s = 0; s < v.ranks; ++s) count += llSourceCounts(v, v.rank, parity, s)[l];
      a.recvCount[l] = count;
    }
  placeAndEmpty(v, a, parity, place);
  if (!llLastBlock(&v.counters->receiveBlocksDone)) return;
  llStamp(v, kTraceDispatch, kTraceReceived, true);
  // Every slot of this parity is consumed and empty again: the domain peers (its only writers) may
  // write it.
  llSignalPeers(v, parity, offsetof(LowLatencyPeerRecord, dispatchCredit), seq);
  if (threadIdx.x == 0) {
    v.counters->dispatchReceived = seq;
    if (!place)
      llRaiseRoutingFault(v, verdict.rank, verdict.kind, verdict.token, verdict.slot, verdict.value,
                          verdict.expectedTopk);
  }
  llTraceCallDone(v, kTraceDispatch, halves);
}

__global__ void __launch_bounds__(kLowLatencyThreads)
    lowLatencyDispatchKernel(LowLatencyView v, ncclMoeLowLatencyDispatchArgs_t a, int halves) {
  // A failure already recorded (a timeout, an earlier fault) ends the call: the communicator is
  // unusable, and its peers' waits end at their timeout or on their own failure.
  if (blockErrorRaised(v.domain)) return;
  llStampStart(v, kTraceDispatch);
  // Read once, before any block can advance them.
  const uint64_t sendSeq = *reinterpret_cast<volatile uint64_t*>(&v.counters->dispatchSent) + 1;
  const uint64_t receiveSeq = *reinterpret_cast<volatile uint64_t*>(&v.counters->dispatchReceived) + 1;
  if (halves & kLowLatencySend) sendHalf(v, a, sendSeq);
  if (halves & kLowLatencyReceive) receiveHalf(v, a, receiveSeq, halves);
}

}  // namespace

cudaError_t launchLowLatencyDispatch(const LowLatencyView& view, const ncclMoeLowLatencyDispatchArgs_t& args,
                                     LowLatencyHalves halves, int maxBlocks, cudaStream_t stream) {
  discardEarlierLaunchError();
  // Only the blocks the work needs: with every block of the budget (6ec5acb) each block polled the
  // peers' records and read the host-mapped error word, and the call at T = 1 on 8 virtual ranks took
  // 189 us instead of 99 (RESULTS.md). Receive: a warp per landing slot a source filled, about R x T
  // (this rank's T stands in for the sources', which the host does not know; the warps loop over any
  // more), and with two hops the relay's (M - 1) x N x D units. Send: one per (token, rank of the
  // domain or other domain).
  const int64_t tokens = std::max(1, args.numTokens);
  int64_t units = 0;
  if (halves & kLowLatencyReceive) {
    units = static_cast<int64_t>(view.ranks) * tokens;
    if (view.domain.domains > 1)
      units = std::max<int64_t>(
          units, static_cast<int64_t>(view.domain.domains - 1) * view.maxTokens * view.domain.localRanks);
  }
  const int64_t perToken = view.domain.localRanks + view.domain.domains - 1;
  if (halves & kLowLatencySend) units = std::max<int64_t>(units, tokens * perToken);
  const int blocks = cappedGrid(units, kLowLatencyWarpsPerBlock, LaunchBudget{maxBlocks});
  // The send half numbers its rows in shared memory (plan/low_latency_shape.h; its bound is checked
  // at communicator creation).
  const size_t shared = (halves & kLowLatencySend)
                            ? static_cast<size_t>(lowLatencySendSharedBytes(view.experts, args.numTokens, args.topk))
                            : 0;
  if (cudaError_t err = allowSharedBytes(lowLatencyDispatchKernel, shared); err != cudaSuccess) return err;
  lowLatencyDispatchKernel<<<blocks, kLowLatencyThreads, shared, stream>>>(view, args, static_cast<int>(halves));
  return cudaGetLastError();
}

}  // namespace nccl_moe
