// Plain data shared by the host code and the kernels of the cross-rank protocol (one domain and
// two-hop): the layout of each rank's peer-visible buffer, the signal phases, and the error record.
//
// Every rank owns one buffer that all peers of its NVLink domain map (transport/peer_buffer.h).
// Ranks are grouped into domains of D consecutive ranks (D = all ranks on one node); "local"
// indices count inside the domain.
//   [signals]   uint64 signals[kPhaseCount][D]: local peer p stores the epoch of the call in which
//               it passed phase `phase` into signals[phase][p] of this rank's buffer.
//   [meta]      one slot per domain n: the routing of rank (n, my local index), normalised to
//               (expert, prob, slot) per selection: MetaHeader, then Selection[maxTokens][maxTopk].
//               The slot of this rank's own domain holds its own routing; the others arrive over
//               the network from its rail peers. So every global rank's routing is readable in
//               every domain, at the peer with the same local index.
//   [dispatch]  this rank's token rows as dispatch sends them (bf16/fp32, or e4m3 + fp32 scales),
//               maxTokens rows, pulled by the destination ranks.
//   [combine]   partial rows for combine, one per (source token, this rank) pair, plus maxTopk fp32
//               probs-gradient values per pair, pulled by the source ranks (or their rail peer).
//               A windowed combine (one domain, combineWindowTokens C, 2C < maxTokens) holds the
//               rows of two windows of C tokens per source instead (kernels/combine.cu).
// Several domains add the two-hop regions (one slot per other domain, maxTokens rows each):
//   [netDispatchSend]  this rank's rows for domain n, packed in token order (FP8: codes + scales).
//   [netDispatchRecv]  rows of rail peer (n, my local index) for this domain, as it packed them;
//                      the ranks of this domain pull them from here.
//   [netCombineSend]   domain partials of those rows (combine row + maxTopk fp32 probs gradients).
//   [netCombineRecv]   one slot per domain: the domain partials of this rank's tokens (the slot of
//                      its own domain is filled locally), summed in domain order at the end.
#pragma once

#include <cstddef>
#include <cstdint>

#include "plan/buffer_layout.h"

namespace nccl_moe {

// Ranks of one NVLink domain that the protocol supports (signal slots, per-token rank masks).
constexpr int kMaxDomainRanks = 128;

// Network transfers (chunks) one dispatch or combine may split its slots into. The signal of a
// chunked phase is epoch * kMaxNetworkChunks + chunk + 1 (kernel_args.h: chunkSignal), so it
// grows over the chunks of a call and over calls.
constexpr int kMaxNetworkChunks = 64;

enum SignalPhase : int {
  kPhaseMetaReady = 0,   // my routing meta is published for epoch e
  kPhaseMetaRead,        // I finished reading every peer's meta of epoch e
  kPhaseRowsReady,       // my dispatch rows are published for epoch e
  kPhaseRowsRead,        // I finished pulling every peer's dispatch rows of epoch e
  kPhasePartialsReady,   // my combine partials are published for epoch e
  kPhasePartialsRead,    // I finished pulling every peer's partials of epoch e
  kPhaseNetRowsReady,    // chunk c of my network receive of dispatch rows of epoch e has landed
  kPhaseNetPartialsReady,// chunk c of my network receive of combine domain partials has landed
  kPhaseWindowStaged,    // windowed combine: my partials of window w of epoch e are staged
  kPhaseWindowRead,      // windowed combine: I finished reading every peer's partials of window w
  kPhaseCount
};

const char* phaseName(int phase);

// Normalised routing entry of one (token, selected expert).
struct MetaSelection {
  int32_t expert;
  int32_t slot;  // k (top-k) or the expert id (routing map)
  float prob;
};

// Where one selection's token stands among its own rank's tokens (the count-first layout, kernels/
// layout_count_first.cu): `pair` among the tokens that select an expert of the selection's rank,
// `row` among those that select its expert, `domain` among those that select an expert of its
// domain. Token order, so the positions are deterministic; -1 for a masked selection.
struct MetaPosition {
  int32_t pair;
  int32_t row;
  int32_t domain;
};

struct MetaHeader {
  int32_t numTokens;
  int32_t topk;         // selections per token in the meta (K, or maxTopk for a routing map)
  int32_t faultKind;    // RoutingFault of the first fault in token order, 0 if none
  int32_t faultToken;
  int32_t faultSlot;
  int32_t blocking;     // 1: this rank's layout is in blocking mode (no row budget)
  int64_t faultValue;
};

// A failed wait or a bad routing, in host-mapped memory so the host reads it without a sync.
struct ErrorRecord {
  int32_t kind;  // ErrorKind
  int32_t rank;
  int32_t peer;
  int32_t phase;
  uint64_t expected;
  uint64_t observed;
  int64_t token;
  int64_t slot;
  int64_t value;
};

// kErrorNetworkTimeout: a network group did not complete in time (peer = the rail peer's global
// rank, phase = the phase its arrival would have signalled, expected = the timeout in ms).
// kErrorRailPeerFailed: a rail peer had already failed when it sent this rank its part of a network
// group (peer = its global rank, phase = the phase the group's arrival would have signalled, slot =
// the chunk or -1): what it sent is not used.
enum ErrorKind : int32_t {
  kErrorNone = 0,
  kErrorTimeout = 1,
  kErrorRoutingFault = 2,
  kErrorNetworkTimeout = 3,
  kErrorRailPeerFailed = 4,
};

// The status word every sender of a network group sends after its rows (transport/rail_exchange):
// whether the kernels that produced them had failed. A receiver whose rail peer failed must not
// use the rows (they may be half written) nor signal their arrival. kRailStatusNone: nothing came
// from that peer in this group (its leg was empty).
enum RailStatus : uint64_t { kRailStatusNone = 0, kRailStatusOk = 1, kRailStatusFailed = 2 };

// The byte offsets of the regions of one rank's buffer: plan/buffer_layout.h (BufferLayout).
static_assert(sizeof(MetaHeader) == kMetaHeaderBytes, "plan/buffer_layout.h sizes the meta with this");
static_assert(sizeof(MetaSelection) == kMetaSelectionBytes, "plan/buffer_layout.h sizes the meta with this");
static_assert(sizeof(MetaPosition) == kMetaPositionBytes, "plan/buffer_layout.h sizes the meta with this");

}  // namespace nccl_moe
