// The low-latency (LL) mode's cross-rank protocol (docs/low_latency.md): what each rank's LL buffer
// holds, the per-peer records of its signals region, the records that travel beside the network
// slots, and the phases an LL wait reports. Plain data shared by the host code and the LL kernels.
//
// Every rank owns one LL buffer that the ranks of its NVLink domain map (transport/peer_buffer.h).
// It holds two parities, each [signals | dispatch landing | combine landing | (several domains:)
// network dispatch send | network dispatch receive | relay rows | network weights send | receive |
// network combine send | receive]. The k-th dispatch uses parity k mod 2 of the NVLink regions,
// the k-th combine too (with its own count, on the device). Data is pushed: a writer fills the
// receiver's landing slots, then its record there; a receiver that has consumed a parity writes a
// credit into each domain peer's record of it, and a writer writes into that parity again (two
// operations later) only after the credit. So consecutive calls need no barrier.
//   signals          R records of 64 bytes, record s about source rank s: written by s when s is in
//                    this domain, else by s's rail peer here (the relay, which fans s's tokens out).
//                    The credit fields of record p (a domain peer) are written by p only.
//   dispatch landing R x N slots: slot (s, t) = header (int32 t + 1, 0 when empty; the token's K
//                    expert ids as int32) + the row (BF16, or E4M3 codes then fp32 scales). The
//                    receiver empties every slot it consumed, so a non-empty slot is always fresh.
//   combine landing  N x maxTopk combine rows: slot (t, k) = the expert output of this rank's token
//                    t in its top-k slot k, from an expert of this domain
// With M > 1 domains (two hops, docs/low_latency.md section 5), per other domain n (in the order of
// DomainView::otherDomainSlot):
//   network dispatch send/receive  N slots as above: this rank's tokens for domain n / the tokens
//                    of the rail peer in n (slot t, header 0 when the token needs no expert there)
//   relay rows       N x maxTopk combine rows: the expert outputs of the rail peer's token (t, k)
//                    from the experts of this domain
//   network weights send/receive   N x round16(4 maxTopk): a token's top-k weights
//   network combine send/receive   N combine rows: node partials (this domain's for the rail peer's
//                    tokens / domain n's for this rank's tokens)
// The network regions of an operation are chosen by its host-side parity (the k-th send half on the
// host uses k mod 2, captured into graphs as it is): the NCCL group that moves them is enqueued by
// the host. They are reused only after the operation two before was received (stream order: at
// most two send halves are outstanding). Each network message travels with a tail from private
// memory (LowLatencyNetTail: sequence number, T, K, the routing fault; for weights the slots of each
// token that belong to the receiver's domain), so the LL buffer holds only what the formula counts.
#pragma once

#include <cstdint>

#include "misc/numerics.h"  // NCCL_MOE_HD
#include "plan/low_latency_shape.h"

namespace nccl_moe {

// Record p of a parity's signals region in rank x's LL buffer: everything source rank p tells x.
// With several domains the record of a source in another domain is written by its relay in x's
// domain (the dispatch fields only: T, K, fault, arrival); the credit and combine fields exist only
// for x's domain peers.
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

// The byte offsets inside one rank's LL buffer and the strides of its slots; from
// plan/low_latency_shape.h, the one source of the LL byte arithmetic. The network regions are 0
// with one domain.
struct LowLatencyRegions {
  int64_t perParity = 0;      // parity q starts at q x perParity
  int64_t signals = 0;        // offsets inside a parity
  int64_t counts = 0;         // [R][L] int32: what each source's dispatch brings per local expert
  int64_t dispatchRecv = 0;
  int64_t combineRecv = 0;
  int64_t netDispatchSend = 0;
  int64_t netDispatchRecv = 0;
  int64_t relayRows = 0;
  int64_t netWeightsSend = 0;
  int64_t netWeightsRecv = 0;
  int64_t netCombineSend = 0;
  int64_t netCombineRecv = 0;
  int64_t slotBytes = 0;      // a dispatch slot: header, then the row
  int64_t headerBytes = 0;
  int64_t scaleOffset = 0;    // FP8: where the scales start inside a slot's row (after the codes)
  int64_t combineRowBytes = 0;
  int64_t weightsBytes = 0;   // one token's weights in the network weights regions
  int64_t total = 0;          // both parities
};

inline LowLatencyRegions lowLatencyRegionsOf(const LowLatencyShape& shape) {
  const LowLatencyBufferBytes bytes = lowLatencyBufferBytes(shape);
  LowLatencyRegions r;
  r.perParity = bytes.perParity;
  r.signals = 0;
  r.counts = r.signals + bytes.signals;
  r.dispatchRecv = r.counts + bytes.counts;
  r.combineRecv = r.dispatchRecv + bytes.dispatchRecv;
  r.netDispatchSend = r.combineRecv + bytes.combineRecv;
  r.netDispatchRecv = r.netDispatchSend + bytes.netDispatchSend;
  r.relayRows = r.netDispatchRecv + bytes.netDispatchRecv;
  r.netWeightsSend = r.relayRows + bytes.relayRows;
  r.netWeightsRecv = r.netWeightsSend + bytes.netWeightsSend;
  r.netCombineSend = r.netWeightsRecv + bytes.netWeightsRecv;
  r.netCombineRecv = r.netCombineSend + bytes.netCombineSend;
  r.headerBytes = lowLatencySlotHeaderBytes(shape.maxTopk);
  r.slotBytes = r.headerBytes + lowLatencyDispatchRowBytes(shape.hidden, shape.fp8);
  r.scaleOffset = shape.fp8 ? roundUpTo(shape.hidden, LowLatencyLimits::kSlotAlign) : 0;
  r.combineRowBytes = lowLatencyCombineRowBytes(shape.hidden);
  r.weightsBytes = lowLatencyWeightsBytes(shape.maxTopk);
  r.total = bytes.total;
  return r;
}

// What travels after each network message of the two-hop LL path (a RailLeg's tail, from and into
// private device memory). The receiver uses the message only when `sequence` is the operation's: a
// stale one means the sender's kernel had failed before it wrote (its NCCL group still ran).
struct LowLatencyNetTail {
  uint64_t sequence;   // the operation's device sequence number (dispatchSent / combineSent + 1)
  int32_t tokens;      // T of the sending rank (dispatch, weights); the relay's rail peer's T (partials)
  int32_t topk;        // K of the sending rank
  int32_t faultKind;   // dispatch: the sender's first routing fault (RoutingFault), 0: none
  int32_t faultToken;
  int32_t faultSlot;
  int32_t reserved;
  int64_t faultValue;
  int64_t padding[3];
  // After these 64 bytes, weights: [N][maxTopk] int8, 1 where slot k of token t is kept and its
  // expert lives in the receiver's domain (the slots whose outputs the relay sums); dispatch: [D][L]
  // int32, the source's rows for each local expert of each rank of the receiver's domain (what the
  // relay writes into the counts region of those ranks).
};
static_assert(sizeof(LowLatencyNetTail) == 64, "the weights' slot flags start 64 bytes in");

// Bytes a dispatch tail carries: the 64, then the source's counts for the receiver's domain.
inline int64_t lowLatencyDispatchTailBytes(const LowLatencyShape& shape) {
  return roundUpTo(static_cast<int64_t>(sizeof(LowLatencyNetTail)) +
                       static_cast<int64_t>(shape.domainSize()) * lowLatencySourceCountsBytes(shape.localExperts()),
                   LowLatencyLimits::kSlotAlign);
}

// Bytes of one tail slot in private memory (every kind gets the largest: they are small).
inline int64_t lowLatencyNetTailBytes(const LowLatencyShape& shape) {
  const int64_t weights = roundUpTo(static_cast<int64_t>(sizeof(LowLatencyNetTail)) +
                                        static_cast<int64_t>(shape.maxTokens) * shape.maxTopk,
                                    LowLatencyLimits::kSlotAlign);
  return weights > lowLatencyDispatchTailBytes(shape) ? weights : lowLatencyDispatchTailBytes(shape);
}

// The network messages of the two-hop LL path, for tails and jobs.
enum LowLatencyNetKind : int {
  kLowLatencyNetDispatch = 0,  // dispatch slots
  kLowLatencyNetWeights = 1,   // combine: the sources' weights to their rail peers
  kLowLatencyNetPartials = 2,  // combine: node partials back to the sources
  kLowLatencyNetKinds = 3,
};

// Tail index in private memory: [kind][host parity][send 0 / receive 1][domain n] (own domain unused).
NCCL_MOE_HD int64_t lowLatencyNetTailIndex(int kind, int parity, int receive, int domain, int domains) {
  return ((static_cast<int64_t>(kind) * LowLatencyLimits::kParities + parity) * 2 + receive) * domains + domain;
}

// The phase an LL wait names in its error record (after the high-throughput SignalPhase values).
enum LowLatencyPhase : int {
  kPhaseLowLatencyDispatchCredit = 16,  // a dispatch send waits until the peer released the parity
  kPhaseLowLatencyDispatchArrival,      // a dispatch receive waits for the peer's slots
  kPhaseLowLatencyCombineCredit,
  kPhaseLowLatencyCombineArrival,
  // Two hops: the network groups (a watchdog timeout, or a rail peer that had failed when it sent).
  kPhaseLowLatencyDispatchNetwork,      // dispatch slots to and from the rail peers
  kPhaseLowLatencyCombineWeights,       // the combine's weights to and from the rail peers
  kPhaseLowLatencyCombinePartials,      // the node partials to and from the rail peers
};

// ErrorRecord.expected of a kErrorRoutingFault the LL dispatch found: a RoutingFault, or this
// value when the peer's K differs from rank 0's (ErrorRecord.value: its K, observed: rank 0's).
constexpr uint64_t kLowLatencyTopkMismatch = 1000;

}  // namespace nccl_moe
