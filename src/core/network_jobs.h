// The network jobs of the two-hop path (transport/rail_exchange.h): which slots of this rank's
// buffer (`buffer`, laid out as view.layout) travel to and from each rail peer in the layout, in
// dispatch and in combine. Pure host arithmetic.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernel_args.h"
#include "plan/plan_choice.h"
#include "transport/rail_exchange.h"

namespace nccl_moe {

// Layout: this rank's meta slot to every rail peer, theirs into its slots (fixed size: a receiver
// does not know the sender's token count yet).
RailJob metaJob(uint8_t* buffer, const DomainView& view);
// Dispatch: this rank's packed rows for domain n to its rail peer there, that peer's rows for this
// domain back, whole slots (maxTokensPerRank rows) in chunks (chunkOf below), fitted to the row
// counts when the host knows them (fitToCounts): see transport/rail_exchange.h.
RailJob dispatchJob(uint8_t* buffer, const DomainView& view);
// Combine: the domain partials of the rail peer's rows back to it; this rank's from domain n.
RailJob combineJob(uint8_t* buffer, const DomainView& view);

using plan::chunkSlots;
using plan::NetworkChunking;

// Chunk `chunk` of a whole-slot job: rows [chunk * rowsPerChunk, (chunk + 1) * rowsPerChunk) of
// every leg, which signals chunkSignal(epoch, chunk) when it has landed.
RailJob chunkOf(const RailJob& whole, const NetworkChunking& chunking, int chunk);

// With the row counts known on the host (a blocking-mode layout whose counts were read): chunk
// `chunk` of a slot job, starting at row firstRow of every slot, moves only the rows the slots
// hold: sendRows[n] rows of the slot for domain n go out, recvRows[n] of the slot from domain n
// come in (each clipped to the chunk). Rail peers derive their counts from the same layout, so
// every send matches the receive at the other end.
void fitToCounts(RailJob* chunk, int64_t firstRow, const int32_t* sendRows, const int32_t* recvRows);

// The jobs of a communicator, built once (they depend on its buffer and domains only): the meta
// whole, dispatch and combine as view.netChunks chunks each.
struct NetworkJobs {
  RailJob meta;
  std::vector<RailJob> dispatch;
  std::vector<RailJob> combine;
};
NetworkJobs networkJobs(uint8_t* buffer, const DomainView& view);

}  // namespace nccl_moe
