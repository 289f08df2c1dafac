// The low-latency (LL) mode's cross-rank protocol inside one NVLink domain (docs/low_latency.md):
// what each rank's LL buffer holds, the per-peer records of its signals region, and the phases an
// LL wait reports. Plain data shared by the host code and the LL kernels.
//
// Every rank owns one LL buffer that the ranks of its domain map (transport/peer_buffer.h). It
// holds two parities, each [signals | dispatch landing | combine landing]; the k-th dispatch uses
// parity k mod 2, the k-th combine too (with its own count). Data is pushed: a sender writes into
// the receiver's landing slots, then its record there; a receiver that has consumed a parity
// writes a credit into each sender's record of it, and a sender writes into that parity again
// (two operations later) only after the credit. So consecutive calls need no barrier.
//   signals          R records of 64 bytes: record p is written by peer p only
//   dispatch landing R x N slots: slot (s, t) = header (int32 t + 1, 0 when empty; the token's K
//                    expert ids as int32) + the row (BF16, or E4M3 codes then fp32 scales). The
//                    receiver empties every slot it consumed, so a non-empty slot is always fresh.
//   combine landing  N x maxTopk combine rows: slot (t, k) = the expert output of this rank's token
//                    t in its top-k slot k
#pragma once

#include <cstdint>

#include "plan/low_latency_shape.h"

namespace nccl_moe {

// Record p of a parity's signals region in rank x's LL buffer: everything peer p tells x.
struct LowLatencyPeerRecord {
  uint64_t dispatchArrived;  // the dispatch (sequence number) whose slots p has written here
  uint64_t dispatchCredit;   // the dispatch whose slots from x p has consumed (x may write again)
  uint64_t combineArrived;   // the combine whose rows p has written here
  uint64_t combineCredit;    // the combine whose rows from x p has consumed
  // What p's dispatch in dispatchArrived carried besides its slots (written before it).
  int32_t tokens;            // T_p
  int32_t topk;              // K_p
  int32_t faultKind;         // RoutingFault of p's first bad id in (token, slot) order; 0: none
  int32_t faultToken;
  int32_t faultSlot;
  int32_t reserved;
  int64_t faultValue;
};
static_assert(sizeof(LowLatencyPeerRecord) == LowLatencyLimits::kSignalBytesPerRank,
              "plan/low_latency_shape.h sizes the signals region with this");

// The byte offsets inside one rank's LL buffer (one domain) and the strides of its slots; from
// plan/low_latency_shape.h, the one source of the LL byte arithmetic.
struct LowLatencyRegions {
  int64_t perParity = 0;      // parity q starts at q x perParity
  int64_t signals = 0;        // offsets inside a parity
  int64_t dispatchRecv = 0;
  int64_t combineRecv = 0;
  int64_t slotBytes = 0;      // a dispatch slot: header, then the row
  int64_t headerBytes = 0;
  int64_t scaleOffset = 0;    // FP8: where the scales start inside a slot's row (after the codes)
  int64_t combineRowBytes = 0;
  int64_t total = 0;          // both parities
};

// One domain only (shape.domains() == 1); the two-hop regions do not exist yet.
inline LowLatencyRegions lowLatencyRegionsOf(const LowLatencyShape& shape) {
  const LowLatencyBufferBytes bytes = lowLatencyBufferBytes(shape);
  LowLatencyRegions r;
  r.perParity = bytes.perParity;
  r.signals = 0;
  r.dispatchRecv = r.signals + bytes.signals;
  r.combineRecv = r.dispatchRecv + bytes.dispatchRecv;
  r.headerBytes = lowLatencySlotHeaderBytes(shape.maxTopk);
  r.slotBytes = r.headerBytes + lowLatencyDispatchRowBytes(shape.hidden, shape.fp8);
  r.scaleOffset = shape.fp8 ? roundUpTo(shape.hidden, LowLatencyLimits::kSlotAlign) : 0;
  r.combineRowBytes = lowLatencyCombineRowBytes(shape.hidden);
  r.total = bytes.total;
  return r;
}

// The phase an LL wait names in its error record (after the high-throughput SignalPhase values).
enum LowLatencyPhase : int {
  kPhaseLowLatencyDispatchCredit = 16,  // a dispatch send waits until the peer released the parity
  kPhaseLowLatencyDispatchArrival,      // a dispatch receive waits for the peer's slots
  kPhaseLowLatencyCombineCredit,
  kPhaseLowLatencyCombineArrival,
  kPhaseLowLatencyGridSync,             // the blocks of one LL kernel wait for each other
};

// ErrorRecord.expected of a kErrorRoutingFault the LL dispatch found: a RoutingFault, or this
// value when the peer's K differs from rank 0's (ErrorRecord.value: its K, observed: rank 0's).
constexpr uint64_t kLowLatencyTopkMismatch = 1000;

}  // namespace nccl_moe
