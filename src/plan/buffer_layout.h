// One rank's peer-visible buffer: the byte offsets of its regions (the same on every rank), from
// the group's shape. The one source of this arithmetic: the library lays its buffer out with it
// (core/comm.cc), the plan choice reads the network staging from it (plan/plan_choice.h), and the
// protocol (transport/protocol.h) describes what each region holds.
#pragma once

#include <cstddef>
#include <cstdint>

#include "plan/moe_shape.h"

namespace nccl_moe {

// A rank's routing meta (transport/protocol.h MetaHeader / MetaSelection / MetaPosition, which
// assert these sizes): a header, one (expert, slot, prob) selection per token and meta column, the
// selection's positions among the rank's own tokens (the count-first layout), then the rank's
// counts: tokens per destination rank, selections per expert, tokens per domain (int32 each).
constexpr size_t kMetaHeaderBytes = 32;
constexpr size_t kMetaSelectionBytes = 12;
constexpr size_t kMetaPositionBytes = 12;
// Every region starts on this boundary.
constexpr size_t kRegionAlignment = 256;

struct BufferLayout {
  size_t signals = 0;
  size_t meta = 0;
  size_t metaSlotBytes = 0;   // one domain's slot of the meta region
  size_t metaPositions = 0;   // inside a meta slot: where the positions start
  size_t metaCounts = 0;      // inside a meta slot: where the counts start
  size_t dispatchRows = 0;
  size_t dispatchScales = 0;
  size_t combineRows = 0;
  size_t combineProbs = 0;
  // Two-hop regions (zero bytes with one domain). Slots of maxTokens rows of the given stride.
  size_t netDispatchSend = 0;
  size_t netDispatchRecv = 0;
  size_t netCombineSend = 0;
  size_t netCombineRecv = 0;
  size_t netDispatchRowBytes = 0;  // staged row (FP8: codes, then fp32 scales), 16-byte multiple
  size_t netDispatchScaleOffset = 0;  // where the FP8 scales start inside a dispatch net row
  size_t netCombineRowBytes = 0;   // combine row, 16-byte padded, then maxTopk fp32 gradients
  size_t netCombineGradOffset = 0; // where the gradients start inside a combine net row
  size_t netSlotRows = 0;          // rows per slot (maxTokens)
  size_t total = 0;
};

// The regions of a rank in a group of `ranks` ranks, `domains` NVLink domains of `domainRanks`;
// `signalPhases` signal slots per domain peer (transport/protocol.h kPhaseCount).
BufferLayout bufferLayoutOf(const GroupDims& dims, int signalPhases, int ranks, int domainRanks, int domains);

// What several domains add to a rank's buffer against one: the network slots and the other
// domains' meta slots (0 with one domain), in a group of `ranks` ranks.
int64_t networkStagingBytes(const GroupDims& dims, int ranks, int domains);

}  // namespace nccl_moe
