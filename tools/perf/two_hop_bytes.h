// nccl-moe-perf's multi-node columns: what a two-hop call moves per rank, over NVLink and over the
// network (pure host arithmetic on the plan's traffic and the sizes ncclMoeCommGetInfo reports;
// no CUDA, no NCCL).
//
// Payload is what the plan needs (reference/hybrid_plan.h predictTraffic): rows x row bytes, dispatch +
// combine, route headers not counted. Wire is what the network phase sends (core/network_jobs.h):
// per call and per rank, one meta slot to each of the M-1 other domains in the layout, then the
// dispatch rows and the combine partials, at the buffer's staged row strides.
//   fixed         every transfer is a whole slot (the library with a row budget, e.g. in a graph):
//                 (M-1) x (metaSlotBytes + netSlotRows x (netDispatchRowBytes + netCombineRowBytes))
//   counted rows  transfers sized to the layout's row counts (the library when every rank's layout
//                 is in blocking mode, as nccl-moe-perf's are): (M-1) x metaSlotBytes + rows the
//                 rank sends x netDispatchRowBytes + partials it returns x netCombineRowBytes
#pragma once

#include <cstdint>

#include "nccl_moe.h"
#include "reference/hybrid_plan.h"

namespace nccl_moe::perf {

struct TwoHopBytes {
  // Mean over ranks (group total / ranks) of the payload, dispatch + combine.
  double nvlinkPayload = 0;
  double networkPayload = 0;
  // The most payload one rank sends over the network: its dispatch rows for other domains plus the
  // domain partials it returns for the rows it received.
  int64_t networkPayloadMax = 0;
  // Bytes one rank sends over the network per layout + dispatch + combine.
  int64_t wireFixed = 0;       // whole slots: the same on every rank
  double wireCountedRows = 0;  // counted rows (blocking mode): mean over ranks
};

// Bytes one rank sends over the network per call: whole slots (0 with one domain).
int64_t fixedWireBytesPerRank(const ncclMoeCommInfo_t& info);

// The whole split. dispatchRowBytes / combineRowBytes are the payload row sizes given to
// predictTraffic (hybridDispatchRowBytes / hybridCombineRowBytes).
TwoHopBytes twoHopBytes(const HybridTraffic& traffic, int64_t dispatchRowBytes, int64_t combineRowBytes,
                        const ncclMoeCommInfo_t& info);

// wire / payload, or 0 when nothing crosses the network (shown as "-").
double wireOverPayload(double wire, double payload);

}  // namespace nccl_moe::perf
