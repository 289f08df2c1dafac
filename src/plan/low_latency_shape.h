// Low-latency (LL) mode: what a communicator fixes for it at creation, the bytes of the LL buffers
// it reserves then, and the network bytes of an LL call. Pure host arithmetic; the semantics and
// the derivation of every formula are in docs/low_latency.md.
//
// Symbols: R ranks, D ranks per NVLink domain, M = R / D domains, E experts, L = E / R local
// experts, K = maxTopk, H hidden, B = ceil(H / 128) FP8 scale blocks, N = lowLatencyMaxTokens,
// P = R x N rows per local-expert segment.
#pragma once

#include <cstdint>

#include "misc/status.h"
#include "plan/moe_shape.h"

namespace nccl_moe {

struct LowLatencyLimits {
  static constexpr int kMaxTokens = 1024;        // largest lowLatencyMaxTokens
  static constexpr int kSlotAlign = 16;          // every buffer slot and row starts 16-byte aligned
  static constexpr int kSignalBytesPerRank = 64; // arrival / credit records per peer and parity
  static constexpr int64_t kMaxSendSharedBytes = 160 * 1024;  // lowLatencySendSharedBytes, any sm_90 block
  static constexpr int kScalePlaneAlign = 4;     // FP8 scale planes hold P rounded up to 4 floats
  static constexpr int kParities = 2;            // double buffering
};

struct LowLatencyShape {
  int ranks = 0;           // R
  int ranksPerDomain = 0;  // D; 0 means R (one domain)
  int experts = 0;         // E
  int hidden = 0;          // H
  int maxTopk = 0;         // K of the communicator; a call's K may be smaller
  int maxTokens = 0;       // N = lowLatencyMaxTokens; 0 = LL mode off
  bool fp8 = false;        // every LL dispatch quantises to E4M3 with per-128 fp32 scales
  bool powerOfTwoScales = false;  // FP8 scales rounded up to a power of two

  int domainSize() const { return ranksPerDomain > 0 ? ranksPerDomain : ranks; }
  int domains() const { return ranks / domainSize(); }
  int domainOf(int rank) const { return rank / domainSize(); }
  int localExperts() const { return experts / ranks; }
  int ownerOf(int expert) const { return expert / localExperts(); }
  int scaleBlocks() const;          // B
  int64_t segmentRows() const { return static_cast<int64_t>(ranks) * maxTokens; }  // P
  int64_t scalePlaneRows() const;   // P rounded up to kScalePlaneAlign
  // The same group as the high-throughput vocabulary sees it (maxTokensPerRank = N).
  GroupShape group() const { return {ranks, experts, hidden, maxTokens, maxTopk}; }
};

// R > 0, E a positive multiple of R, 1 <= H <= kMaxHiddenSize, 1 <= K <= E,
// 1 <= N <= kMaxTokens, D divides R, power-of-two scales only with FP8.
Status checkLowLatencyShape(const LowLatencyShape& shape);

// ---- Slots ------------------------------------------------------------------------------------
int64_t roundUpTo(int64_t value, int64_t multiple);
// Header of a dispatch slot, int32 each: the source token index + 1, the token's maxTopk expert
// ids, then for each slot the row's number among its source's rows of that expert (token order),
// which the source computes so that a receiver places the row without counting.
int64_t lowLatencySlotHeaderBytes(int maxTopk);
// Counts a dispatch source tells each domain peer (its rows per local expert of that peer): L int32.
int64_t lowLatencySourceCountsBytes(int localExperts);
// Shared memory of the dispatch send half of a block: per expert a running count and a bit mask of
// the lanes of a 32-token round, and the T x K positions (int16) of the call.
int64_t lowLatencySendSharedBytes(int experts, int tokens, int topk);
// A dispatch row in a slot: BF16 round16(2H); FP8 round16(H) codes, then round16(4B) scales.
int64_t lowLatencyDispatchRowBytes(int hidden, bool fp8);
// A combine row (one expert output, or one node partial): round16(2H).
int64_t lowLatencyCombineRowBytes(int hidden);
// The top-k weights of one token as they travel to a rail peer: round16(4K).
int64_t lowLatencyWeightsBytes(int maxTopk);

// ---- Buffers reserved at communicator creation (per rank) --------------------------------------
// Every region exists once per parity; total = 2 x perParity. Regions of the network path are 0
// with one domain.
struct LowLatencyBufferBytes {
  int64_t signals = 0;          // R x 64
  int64_t counts = 0;           // round16(R x L x 4): source s's rows for each local expert
  int64_t dispatchRecv = 0;     // R x N slots (source rank, token): header + dispatch row
  int64_t combineRecv = 0;      // N x K combine rows (token, slot) from experts of the own domain
  int64_t netDispatchSend = 0;  // (M-1) x N slots (other domain, token), staged for the network
  int64_t netDispatchRecv = 0;  // (M-1) x N slots (source domain, token) from the rail peers
  int64_t relayRows = 0;        // (M-1) x N x K combine rows the relay sums into node partials
  int64_t netWeightsSend = 0;   // (M-1) x N x round16(4K): this rank's weights for each rail peer
  int64_t netWeightsRecv = 0;   // (M-1) x N x round16(4K): the relayed sources' weights
  int64_t netCombineSend = 0;   // (M-1) x N combine rows: node partials for the relayed sources
  int64_t netCombineRecv = 0;   // (M-1) x N combine rows: node partials of this rank's tokens
  int64_t perParity = 0;
  int64_t total = 0;
};
LowLatencyBufferBytes lowLatencyBufferBytes(const LowLatencyShape& shape);

// ---- Output tensors (the caller's memory, not part of the LL buffers) --------------------------
struct LowLatencyOutputSizes {
  int64_t rows = 0;         // L x P
  int64_t xBytes = 0;       // rows x H x (2 BF16, 1 FP8)
  int64_t scaleFloats = 0;  // FP8: L x B x scalePlaneRows; 0 without FP8
  int64_t srcInfoInts = 0;  // rows x 3
  int64_t counts = 0;       // L
};
LowLatencyOutputSizes lowLatencyOutputSizes(const LowLatencyShape& shape);

// ---- Network bytes of one call, per rank -------------------------------------------------------
// Payload rows under uniform routing (every token selects `topk` distinct experts uniformly, no
// masked slot), expected values for `tokens` tokens on one rank; payload bytes = rows x the row's
// data bytes (BF16 2H, FP8 H + 4B for dispatch; 2H for combine), headers not counted.
struct LowLatencyNetworkModel {
  double rowsPerExpert = 0;  // one row per (token, expert in another domain): no deduplication
  double rowsPerRank = 0;    // one row per (token, rank in another domain)
  double rowsPerNode = 0;    // one row per (token, other domain holding one of its experts)
  int64_t dispatchPayloadRowBytes = 0;
  int64_t combinePayloadRowBytes = 0;
  double dispatchBytesPerExpert = 0;  // rowsPerExpert x dispatchPayloadRowBytes
  double dispatchBytesPerNode = 0;    // rowsPerNode x dispatchPayloadRowBytes
  double combineBytesPerExpert = 0;
  double combineBytesPerNode = 0;
  double dedupFactor = 0;  // rowsPerExpert / rowsPerNode = K / (M x P(a domain is hit)); 0 if M = 1
  // What the fixed-slot network path sends every call whatever the routing and T: every slot of
  // every other domain, dispatch (M-1) x N x (header + dispatch row), combine
  // (M-1) x N x (weights + combine row).
  int64_t fixedWireDispatchBytes = 0;
  int64_t fixedWireCombineBytes = 0;
};
LowLatencyNetworkModel lowLatencyUniformNetworkModel(const LowLatencyShape& shape, int tokens, int topk);

}  // namespace nccl_moe
