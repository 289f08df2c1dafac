// The routing meta both layout engines publish and read (kernels/layout.cu, the scan engine, and
// kernels/layout_count_first.cu): where each rank's meta lives, how a token's routing is checked
// and normalised into it, the header and the group-wide fault, and small per-token questions.
#pragma once

#include "kernels/block_scan.cuh"
#include "kernels/launch.h"
#include "misc/numerics.h"
#include "plan/moe_shape.h"
#include "plan/routing.h"
#include "transport/device_sync.cuh"

namespace nccl_moe {
namespace layout_meta {

constexpr int kThreads = kLayoutScanChunk;  // a scan chunk is one token per thread

// Rank s = (n, g)'s meta lives in slot n of the buffer of local peer g.
__device__ __forceinline__ uint8_t* metaSlot(const DomainView& view, int rank) {
  return view.peerBuffers[rank % view.localRanks] + view.layout.meta +
         static_cast<size_t>(rank / view.localRanks) * view.layout.metaSlotBytes;
}

__device__ __forceinline__ const MetaHeader* metaHeader(const DomainView& view, int rank) {
  return reinterpret_cast<const MetaHeader*>(metaSlot(view, rank));
}

__device__ __forceinline__ MetaSelection* metaSelections(const DomainView& view, int rank) {
  return reinterpret_cast<MetaSelection*>(metaSlot(view, rank) + sizeof(MetaHeader));
}

// The selections' positions among the rank's own tokens (count-first engine only).
__device__ __forceinline__ MetaPosition* metaPositions(const DomainView& view, int rank) {
  return reinterpret_cast<MetaPosition*>(metaSlot(view, rank) + view.layout.metaPositions);
}

// The rank's counts (count-first engine only): [ranks] tokens per destination rank, [experts]
// selections per expert, [domains] tokens per domain.
__device__ __forceinline__ int32_t* metaCounts(const DomainView& view, int rank) {
  return reinterpret_cast<int32_t*>(metaSlot(view, rank) + view.layout.metaCounts);
}

// Selection k is the first of the token's selections owned by its group (a rank: groupSize = L
// experts; a domain: D * L experts).
__device__ __forceinline__ bool firstOfGroup(const MetaSelection* sel, int k, int groupSize) {
  if (sel[k].expert < 0) return false;
  const int group = sel[k].expert / groupSize;
  for (int j = 0; j < k; ++j)
    if (sel[j].expert >= 0 && sel[j].expert / groupSize == group) return false;
  return true;
}

// Distinct groups in [low, group) among the token's selections: the index of `group` among the
// token's groups of at least `low`, in ascending order.
__device__ __forceinline__ int groupsBetween(const MetaSelection* sel, int width, int groupSize, int low, int group) {
  int below = 0;
  for (int k = 0; k < width; ++k) {
    if (!firstOfGroup(sel, k, groupSize)) continue;
    const int other = sel[k].expert / groupSize;
    below += other >= low && other < group;
  }
  return below;
}

__device__ __forceinline__ uint64_t faultKeyOf(int token, int slot, RoutingFault fault) {
  return (static_cast<uint64_t>(token) << 32) | (static_cast<uint64_t>(slot) << 4) |
         static_cast<uint64_t>(fault);
}

// The token selects an expert of `group` (rank: groupSize = L; domain: D * L).
__device__ __forceinline__ bool tokenHitsGroup(const MetaSelection* sel, int width, int groupSize, int group) {
  for (int k = 0; k < width; ++k)
    if (sel[k].expert >= 0 && sel[k].expert / groupSize == group) return true;
  return false;
}

// Checks token t of this rank's routing and writes its normalised selections to `out` (metaWidth
// entries): the fault key of its first fault in slot order, ~0 if none (a faulty selection is
// left masked).
__device__ inline uint64_t normaliseToken(const GroupDims& dims, const LayoutInput& in, int t, MetaSelection* out) {
  const int width = dims.metaWidth;
  uint64_t fault = ~0ull;
  int count = 0;
  if (in.format == static_cast<int>(RoutingFormat::kTopk)) {
    // A batch of ids and probabilities is read before any is checked or written (the writes to
    // `out` could alias them for the compiler): one round trip per batch, not per slot.
    constexpr int kBatch = 8;
    const int64_t* ids = in.topkIdx + static_cast<size_t>(t) * in.topk;
    const float* probs = in.topkProbs ? in.topkProbs + static_cast<size_t>(t) * in.topk : nullptr;
    for (int k0 = 0; k0 < in.topk; k0 += kBatch) {
      int64_t id[kBatch];
      float p[kBatch];
#pragma unroll
      for (int j = 0; j < kBatch; ++j) {
        id[j] = k0 + j < in.topk ? ids[k0 + j] : -1;
        p[j] = k0 + j < in.topk && probs ? probs[k0 + j] : 0.0f;
      }
#pragma unroll
      for (int j = 0; j < kBatch; ++j) {
        const int k = k0 + j;
        if (k >= in.topk) break;
        const int64_t e = id[j];
        out[k] = MetaSelection{-1, k, 0.0f};
        if (e == -1) continue;
        if (fault == ~0ull && (e < 0 || e >= dims.experts)) fault = faultKeyOf(t, k, RoutingFault::kExpertOutOfRange);
        bool duplicate = false;
        for (int i = 0; i < k0; ++i) duplicate = duplicate || ids[i] == e;  // earlier batches
#pragma unroll
        for (int i = 0; i < j; ++i) duplicate = duplicate || id[i] == e;
        if (fault == ~0ull && duplicate) fault = faultKeyOf(t, k, RoutingFault::kDuplicateExpert);
        if (fault == ~0ull && probs && !isfinite(p[j])) fault = faultKeyOf(t, k, RoutingFault::kProbNotFinite);
        if (fault == ~0ull) out[k] = MetaSelection{static_cast<int32_t>(e), k, p[j]};
      }
    }
    for (int k = in.topk; k < width; ++k) out[k] = MetaSelection{-1, k, 0.0f};
  } else {
    for (int e = 0; e < dims.experts; ++e) {
      const uint8_t selected = in.routingMap[static_cast<size_t>(t) * dims.experts + e];
      if (selected == 0) continue;
      const float prob = in.denseProbs ? in.denseProbs[static_cast<size_t>(t) * dims.experts + e] : 0.0f;
      // Same order of checks as findRoutingFault (plan/routing.cc).
      if (selected > 1) {
        fault = faultKeyOf(t, e, RoutingFault::kMapValueNotBool);
      } else if (count == width) {
        fault = faultKeyOf(t, e, RoutingFault::kTooManyExperts);
      } else if (in.denseProbs && !isfinite(prob)) {
        fault = faultKeyOf(t, e, RoutingFault::kProbNotFinite);
      } else {
        out[count++] = MetaSelection{e, e, prob};
      }
      if (fault != ~0ull) break;
    }
    for (int k = count; k < width; ++k) out[k] = MetaSelection{-1, -1, 0.0f};
  }
  return fault;
}

// This rank's meta header, with the first fault (its value re-read from the input); resets the
// fault key for the next layout. One thread.
__device__ inline void writeMetaHeader(const DomainView& view, const GroupDims& dims, const LayoutInput& in,
                                       uint64_t* faultKey) {
  MetaHeader header{};
  header.numTokens = in.numTokens;
  header.topk = dims.metaWidth;
  header.blocking = in.blocking;
  // Not from L1: the count-first engine's blocks set it with atomics earlier in the same kernel.
  const uint64_t key = *const_cast<const volatile uint64_t*>(faultKey);
  if (key != ~0ull) {
    const int token = static_cast<int>(key >> 32);
    const int slot = static_cast<int>((key >> 4) & 0x0FFFFFFF);
    const auto fault = static_cast<RoutingFault>(key & 0xF);
    header.faultKind = static_cast<int32_t>(fault);
    header.faultToken = token;
    header.faultSlot = slot;
    const bool topk = in.format == static_cast<int>(RoutingFormat::kTopk);
    const size_t i = topk ? static_cast<size_t>(token) * in.topk + slot : static_cast<size_t>(token) * dims.experts + slot;
    if (fault == RoutingFault::kProbNotFinite) {
      header.faultValue = floatBits(topk ? in.topkProbs[i] : in.denseProbs[i]);
    } else if (fault == RoutingFault::kMapValueNotBool) {
      header.faultValue = in.routingMap[i];
    } else if (fault == RoutingFault::kTooManyExperts) {
      header.faultValue = slot;
    } else {
      header.faultValue = in.topkIdx[i];
    }
    *faultKey = ~0ull;
  }
  *reinterpret_cast<MetaHeader*>(metaSlot(view, view.rank)) = header;
}

// True when some rank's routing is faulty; the first such rank's fault goes to the handle.
__device__ inline bool groupFault(const DomainView& view, const HandleDevice& handle) {
  for (int r = 0; r < view.ranks; ++r) {
    const MetaHeader* header = metaHeader(view, r);
    if (header->faultKind != 0) {
      if (blockIdx.x == 0 && threadIdx.x == 0) {
        handle.counts->fault = 1;
        handle.counts->faultRank = r;
        handle.counts->faultKind = header->faultKind;
        handle.counts->faultToken = header->faultToken;
        handle.counts->faultSlot = header->faultSlot;
        handle.counts->faultValue = header->faultValue;
      }
      return true;
    }
  }
  return false;
}

// The counts ncclMoeHandleGetCounts reports, from this rank's pair slots and padded expert-major
// rows (the segments are contiguous, so a budget keeps min(all, budget) rows), and what the group's
// meta headers say: whether some rank set a row budget, the most tokens any rank routed. One thread.
__device__ inline void writeReportedCounts(const DomainView& view, const HandleDevice& handle, int64_t pairs,
                                           int64_t padded) {
  bool someBudgeted = false;
  int32_t maxTokens = 0;
#pragma unroll 8
  for (int s = 0; s < view.ranks; ++s) {
    const MetaHeader* header = metaHeader(view, s);
    someBudgeted |= header->blocking == 0;
    maxTokens = max(maxTokens, header->numTokens);
  }
  const int64_t kept = handle.rowBudget >= 0 ? min(padded, handle.rowBudget) : padded;
  handle.counts->groupBlocking = someBudgeted ? 0 : 1;
  handle.counts->groupMaxTokens = maxTokens;
  handle.counts->recvPairs = pairs;
  handle.counts->rowsNeeded = handle.expertMajor ? padded : pairs;
  handle.counts->recvRows = handle.expertMajor ? kept : pairs;
  handle.counts->overflow = handle.expertMajor && handle.rowBudget >= 0 && padded > handle.rowBudget;
}

// Exclusive prefix sums over the layout's blocks (kernels/block_scan.cuh).
template <class ValueOf, class Visit>
__device__ int64_t blockExclusiveScan(int count, ValueOf valueOf, Visit visit) {
  return blockExclusiveScanOf<kThreads>(count, valueOf, visit);
}

// The source rank of origin o's routes: this rank for its own domain, else its rail peer (o, g).
__device__ __forceinline__ int routeSource(const DomainView& view, int origin) {
  return origin == view.domain ? view.rank : origin * view.localRanks + view.localRank;
}

}  // namespace layout_meta
}  // namespace nccl_moe
