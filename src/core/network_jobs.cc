#include "core/network_jobs.h"

namespace nccl_moe {

namespace {

// Offset index of another domain's slot in a rank's network regions (they hold none for its own).
size_t otherSlot(const ncclMoeComm& comm, int n) { return static_cast<size_t>(n < comm.view.domain ? n : n - 1); }

uint8_t* ownBuffer(const ncclMoeComm& comm) { return comm.buffer->local(); }

// The legs of one network job: one per other domain n, whose rail peer is rank n of the rail
// communicator.
template <class LegOf>
RailJob railJob(const ncclMoeComm& comm, const char* what, int phase, bool selfOnly, LegOf legOf) {
  RailJob job;
  job.what = what;
  job.phase = phase;
  job.selfOnly = selfOnly;
  for (int n = 0; n < comm.domains; ++n)
    if (n != comm.view.domain) job.legs.push_back(legOf(n));
  return job;
}

}  // namespace

RailJob metaJob(const ncclMoeComm& comm) {
  const BufferLayout& layout = comm.view.layout;
  uint8_t* meta = ownBuffer(comm) + layout.meta;
  return railJob(comm, "layout meta", kPhaseMetaReady, false, [&](int n) {
    RailLeg leg;
    leg.peer = n;
    leg.send = meta + comm.view.domain * layout.metaSlotBytes;
    leg.recv = meta + n * layout.metaSlotBytes;
    leg.rows = 1;
    leg.rowBytes = layout.metaSlotBytes;
    return leg;
  });
}

// Row slots of maxTokens rows, one per other domain; the combine receive region also holds a slot
// for this rank's own domain (filled locally), so its slot index is the domain itself.
static RailJob slotJob(const ncclMoeComm& comm, const char* what, int phase, bool selfOnly, size_t sendRegion,
                size_t recvRegion, size_t rowBytes, bool recvHasOwnSlot) {
  const size_t rows = comm.view.layout.netSlotRows, slotBytes = rows * rowBytes;
  return railJob(comm, what, phase, selfOnly, [&](int n) {
    RailLeg leg;
    leg.peer = n;
    leg.send = ownBuffer(comm) + sendRegion + otherSlot(comm, n) * slotBytes;
    leg.recv = ownBuffer(comm) + recvRegion + (recvHasOwnSlot ? static_cast<size_t>(n) : otherSlot(comm, n)) * slotBytes;
    leg.rows = static_cast<int64_t>(rows);
    leg.rowBytes = rowBytes;
    return leg;
  });
}

RailJob dispatchJob(const ncclMoeComm& comm) {
  const BufferLayout& layout = comm.view.layout;
  return slotJob(comm, "dispatch rows", kPhaseNetRowsReady, false, layout.netDispatchSend, layout.netDispatchRecv,
                 layout.netDispatchRowBytes, false);
}

RailJob combineJob(const ncclMoeComm& comm) {
  const BufferLayout& layout = comm.view.layout;
  return slotJob(comm, "combine partials", kPhaseNetPartialsReady, true, layout.netCombineSend, layout.netCombineRecv,
                 layout.netCombineRowBytes, true);
}

}  // namespace nccl_moe
