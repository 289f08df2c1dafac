// Arguments of the layout, dispatch and combine kernels (one domain and two-hop): the group's
// dimensions and the device arrays of one layout handle (what a kernel sees of its domain is
// transport/domain_view.h). Plain structs, passed by value.
#pragma once

#include <cstdint>

#include "misc/numerics.h"
#include "transport/domain_view.h"
#include "transport/protocol.h"

namespace nccl_moe {

// One packed received row: source rank, source token, local expert (-1: per-rank row / padding),
// and, for a source in another domain, the row's index in the rail peer's network receive slot.
struct RecvEntry {
  int32_t srcRank;  // -1: padding row
  int32_t srcToken;
  int32_t localExpert;
  int32_t netRow;   // -1: the source is in this domain (pull from its staging area)
};

// A (destination rank inside this domain, pair slot there) of a token this rank routes.
struct SendPair {
  int32_t dstRank;  // local index in the domain
  int32_t slot;
};

// One selection of this rank's own tokens: the domain of its expert (-1: masked), which of the
// token's pairs in this domain carries it (-1: masked or another domain), and its slot in the
// routing (k, or the expert id of a routing map).
struct OwnSelection {
  int32_t pairIndex;
  int32_t slot;
  int32_t domain;
};

// Counts of one handle, also in pinned host memory for ncclMoeHandleGetCounts (copied there by the
// scan engine, written there by the count-first scan kernel).
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
  int32_t groupBlocking;  // every rank of the group made this layout in blocking mode
  int32_t groupMaxTokens; // the most tokens any rank of the group routed in this layout (windowed combine)
};

// The count-first layout's tickets (HandleDevice::layoutTickets).
enum LayoutTicket : int {
  kTicketPublishDone = 0,  // blocks of the publish kernel done
  kTicketScanDone,         // blocks of the scan kernel done
  kTicketNextChunk,        // the publish kernel's next chunk to hand out
  kTicketChunksDone,       // fused kernel: chunks whose positions are written
  kLayoutTickets
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
  // Routes: for origin o = this domain, this rank's own tokens; for another domain o, the tokens
  // of rail peer (o, my local index) that it sends here. Pairs by ascending destination.
  SendPair* routePairs;       // [domains][maxTokens][metaWidth]
  int32_t* routePairCount;    // [domains][maxTokens]
  SendPair* sendPairs;        // = routePairs of this rank's own domain
  int32_t* sendPairCount;     // = routePairCount of this rank's own domain
  // Two-hop only (null with one domain):
  int32_t* netIndex;          // [ranks][maxTokens]: scratch of the receive scan
  int32_t* relayIndex;        // [domains][maxTokens]: o != mine: row of (o, g)'s token t in my
                              // network receive slot o, -1 if it does not come here
  int32_t* packIndex;         // [domains][maxTokens]: o != mine: row of my token t in my network
                              // send slot o, -1 if it does not go there
  int32_t* routeSelPair;      // [domains][maxTokens][metaWidth]: o != mine: the route pair that
                              // carries selection k of rail peer (o, g)'s token t, -1
  int32_t* routeTokens;       // [domains]: tokens of each origin's source rank
  int32_t* netRows;           // two-hop: [2][domains]: rows of my network send slot for domain n
                              // (my tokens packed for n), then rows of my receive slot from
                              // domain n (its rail peer's tokens relayed here); 0 for my domain
  OwnSelection* ownSel;       // [maxTokens][metaWidth]: this rank's selections, by pair
  int64_t* pairBase;          // [ranks]: first pair slot here of each source rank
  int64_t* rowBase;           // [ranks][L]: expert-major first row here of (source, expert)
  int64_t* segmentStart;      // [L]
  int64_t* segmentKept;       // [L]: rows kept per segment (padding included)
  int64_t* segmentPairs;      // [L]: (token, expert) pairs per segment
  int32_t* scanCounts;        // layout scratch: [max(ranks, experts)][chunks of kLayoutScanChunk tokens]
                              // (scan engine), [chunks][ranks + experts + domains] (count-first)
  // Count-first synchronisation words, zeroed once when the handle's memory is allocated and left
  // at zero by the kernel that uses them (its last block), so a layout enqueues no memset:
  int32_t* layoutTickets;     // [kLayoutTickets] (LayoutTicket)
  int32_t* chunkReady;        // [chunks] publish kernel: 1 once chunk c's counts are in scanCounts
  // Device-visible pointers into the handle's mapped pinned host copy of the counts (the layout
  // written as call_phases.h says): the count-first scan kernel's last block writes it directly.
  HandleCounts* hostCounts;
  int64_t* hostTokensPerExpert;  // [L]
  int32_t* hostNetRows;          // two-hop: [2][domains]; null with one domain
  // The count-first layout's block 0 stores countsTag here once the host copy holds the layout's
  // counts, as soon as it has derived them and before the rows are placed: the host reads them
  // without waiting for the kernel's end and enqueues the dispatch behind it. countsTag 0: not
  // stored (a layout captured into a graph; the scan engine, which copies after its kernels).
  uint64_t* hostCountsTag;
  uint64_t countsTag;
  int64_t pairCapacity;
  int64_t rowCapacity;
  int32_t expertMajor;
  int32_t padMultiple;        // >= 1
  int64_t rowBudget;          // -1: none
  int32_t numTokens;          // this rank's T
  int32_t routingFormat;      // RoutingFormat
};

}  // namespace nccl_moe
