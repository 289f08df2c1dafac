// Arguments of the single-domain kernels: what every kernel sees of the domain, and the device
// arrays of one layout handle. Plain structs, passed by value.
#pragma once

#include <cstdint>

#include "kernels/protocol.h"

namespace nccl_moe {

// Per-communicator counters on the device, so that a captured CUDA graph replays with fresh
// epochs: a call runs with epoch current + 1, and its last kernel stores that into `current`.
struct DeviceEpochs {
  uint64_t current;
  uint64_t lastMeta;      // epoch of the last layout (whose meta peers read)
  uint64_t lastRows;      // epoch of the last dispatch
  uint64_t lastPartials;  // epoch of the last combine
  uint32_t blocksDone;    // last-block detection inside one kernel
  uint32_t pad;
};

struct DomainView {
  int rank = 0;
  int ranks = 0;
  uint8_t* const* peerBuffers = nullptr;  // [ranks] device pointers to every rank's buffer
  BufferLayout layout;
  ErrorRecord* error = nullptr;      // device memory: the first failure of this rank
  ErrorRecord* errorHost = nullptr;  // host-mapped mirror the host reads without a sync
  uint64_t timeoutNs = 0;
  DeviceEpochs* epochs = nullptr;
};

struct GroupDims {
  int experts = 0;
  int localExperts = 0;
  int hidden = 0;
  int maxTokens = 0;
  int metaWidth = 0;        // selections per token in the meta (K or maxTopk)
  int rowType = 0;          // ElementType of token rows
  int fp8 = 0;              // dispatch rows are e4m3 + scales
  int fp8PowerOfTwo = 0;
  int scaleBlocks = 0;
};

// One packed received row: source rank, source token, local expert (-1: per-rank row / padding).
struct RecvEntry {
  int32_t srcRank;  // -1: padding row
  int32_t srcToken;
  int32_t localExpert;
};

// A (destination rank, pair slot there) of one of this rank's tokens.
struct SendPair {
  int32_t dstRank;
  int32_t slot;
};

// One selection of this rank's own tokens: which of the token's pairs carries it (-1: masked), and
// its slot in the routing (k, or the expert id of a routing map).
struct OwnSelection {
  int32_t pairIndex;
  int32_t slot;
};

// Counts of one handle, also copied to pinned host memory for ncclMoeHandleGetCounts.
struct HandleCounts {
  int64_t recvRows;      // rows written in the dispatch output
  int64_t recvPairs;     // (source token, this rank) pairs = combine partials this rank publishes
  int64_t rowsNeeded;    // expert-major rows before the budget
  int32_t overflow;
  int32_t fault;         // a routing fault anywhere in the group: nothing was moved
  int32_t faultRank;
  int32_t faultKind;
  int32_t faultToken;
  int32_t faultSlot;
  int64_t faultValue;
};

// Device arrays of one handle (carved from one allocation).
struct HandleDevice {
  HandleCounts* counts;
  int64_t* tokensPerExpert;   // [L]
  int32_t* groupCounts;       // [ranks][E]: tokens of rank s selecting expert e
  int32_t* groupHits;         // [ranks][ranks]: tokens of rank s selecting any expert of rank d
  int32_t* tokenSlot;         // [ranks][maxTokens]: pair slot at this rank of (s, t), -1 if none
  RecvEntry* recvPairs;       // [pairCapacity]: (s, t) of each pair slot
  int32_t* pairRows;          // [pairCapacity][metaWidth]: expert-major rows of the pair (-1)
  RecvEntry* recvRows;        // [rowCapacity]: expert-major rows
  float* recvRowProb;         // [rowCapacity]
  MetaSelection* pairSel;     // [pairCapacity][metaWidth]: the pair's routing, local ids / -1
  SendPair* sendPairs;        // [maxTokens][metaWidth]: this rank's tokens, by destination rank
  int32_t* sendPairCount;     // [maxTokens]
  OwnSelection* ownSel;       // [maxTokens][metaWidth]: this rank's selections, by pair
  int64_t* pairBase;          // [ranks]: first pair slot here of each source rank
  int64_t* rowBase;           // [ranks][L]: expert-major first row here of (source, expert)
  int64_t* sendBase;          // [ranks]: first pair slot of this rank's tokens at each rank
  int64_t* segmentStart;      // [L]
  int64_t* segmentKept;       // [L]: rows kept per segment (padding included)
  int64_t* segmentPairs;      // [L]: (token, expert) pairs per segment
  int64_t pairCapacity;
  int64_t rowCapacity;
  int32_t expertMajor;
  int32_t padMultiple;        // >= 1
  int64_t rowBudget;          // -1: none
  int32_t numTokens;          // this rank's T
  int32_t routingFormat;      // RoutingFormat
};

}  // namespace nccl_moe
