// Plain data shared by the host code and the kernels of the single-domain protocol: the layout of
// each rank's peer-visible buffer, the signal phases, and the error record.
//
// Every rank owns one buffer that all peers of its NVLink domain map (transport/peer_buffer.h):
//   [signals]   uint64 signals[kPhaseCount][ranks]: peer p stores the epoch of the call in which it
//               passed phase `phase` into signals[phase][p] of this rank's buffer.
//   [meta]      this rank's routing, normalised to (expert, prob, slot) per selection, read by every
//               peer during the layout: MetaHeader, then Selection[maxTokens][maxTopk].
//   [dispatch]  this rank's token rows as dispatch sends them (bf16/fp32, or e4m3 + fp32 scales),
//               maxTokens rows, pulled by the destination ranks.
//   [combine]   partial rows for combine, one per (source token, this rank) pair, plus maxTopk fp32
//               probs-gradient values per pair, pulled by the source ranks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nccl_moe {

// Ranks of one NVLink domain that the protocol supports (signal slots, per-token rank masks).
constexpr int kMaxDomainRanks = 128;

enum SignalPhase : int {
  kPhaseMetaReady = 0,   // my routing meta is published for epoch e
  kPhaseMetaRead,        // I finished reading every peer's meta of epoch e
  kPhaseRowsReady,       // my dispatch rows are published for epoch e
  kPhaseRowsRead,        // I finished pulling every peer's dispatch rows of epoch e
  kPhasePartialsReady,   // my combine partials are published for epoch e
  kPhasePartialsRead,    // I finished pulling every peer's partials of epoch e
  kPhaseCount
};

const char* phaseName(int phase);

// Normalised routing entry of one (token, selected expert).
struct MetaSelection {
  int32_t expert;
  int32_t slot;  // k (top-k) or the expert id (routing map)
  float prob;
};

struct MetaHeader {
  int32_t numTokens;
  int32_t topk;         // selections per token in the meta (K, or maxTopk for a routing map)
  int32_t faultKind;    // RoutingFault of the first fault in token order, 0 if none
  int32_t faultToken;
  int32_t faultSlot;
  int32_t pad;
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

enum ErrorKind : int32_t { kErrorNone = 0, kErrorTimeout = 1, kErrorRoutingFault = 2 };

// Byte offsets of the regions of one rank's buffer (the same on every rank).
struct BufferLayout {
  size_t signals = 0;
  size_t meta = 0;
  size_t dispatchRows = 0;
  size_t dispatchScales = 0;
  size_t combineRows = 0;
  size_t combineProbs = 0;
  size_t total = 0;
};

}  // namespace nccl_moe
