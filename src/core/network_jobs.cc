#include "core/network_jobs.h"

namespace nccl_moe {

namespace {

// The legs of one network job: one per other domain n, whose rail peer is rank n of the rail
// communicator.
template <class LegOf>
RailJob railJob(const DomainView& view, const char* what, int phase, bool selfOnly, LegOf legOf) {
  RailJob job;
  job.what = what;
  job.phase = phase;
  job.selfOnly = selfOnly;
  for (int n = 0; n < view.domains; ++n)
    if (n != view.domain) job.legs.push_back(legOf(n));
  return job;
}

// Row slots of maxTokens rows, one per other domain; the combine receive region also holds a slot
// for this rank's own domain (filled locally), so its slot index is the domain itself.
RailJob slotJob(uint8_t* buffer, const DomainView& view, const char* what, int phase, bool selfOnly, size_t sendRegion,
                size_t recvRegion, size_t rowBytes, bool recvHasOwnSlot) {
  const size_t rows = view.layout.netSlotRows, slotBytes = rows * rowBytes;
  return railJob(view, what, phase, selfOnly, [&](int n) {
    RailLeg leg;
    leg.peer = n;
    leg.send = buffer + sendRegion + view.otherDomainSlot(n) * slotBytes;
    leg.recv = buffer + recvRegion + (recvHasOwnSlot ? static_cast<size_t>(n) : view.otherDomainSlot(n)) * slotBytes;
    leg.rows = static_cast<int64_t>(rows);
    leg.rowBytes = rowBytes;
    return leg;
  });
}

}  // namespace

RailJob metaJob(uint8_t* buffer, const DomainView& view) {
  const BufferLayout& layout = view.layout;
  uint8_t* meta = buffer + layout.meta;
  return railJob(view, "layout meta", kPhaseMetaReady, false, [&](int n) {
    RailLeg leg;
    leg.peer = n;
    leg.send = meta + view.domain * layout.metaSlotBytes;
    leg.recv = meta + n * layout.metaSlotBytes;
    leg.rows = 1;
    leg.rowBytes = layout.metaSlotBytes;
    return leg;
  });
}

RailJob dispatchJob(uint8_t* buffer, const DomainView& view) {
  const BufferLayout& layout = view.layout;
  return slotJob(buffer, view, "dispatch rows", kPhaseNetRowsReady, false, layout.netDispatchSend,
                 layout.netDispatchRecv, layout.netDispatchRowBytes, false);
}

NetworkJobs networkJobs(uint8_t* buffer, const DomainView& view) {
  return {metaJob(buffer, view), dispatchJob(buffer, view), combineJob(buffer, view)};
}

RailJob combineJob(uint8_t* buffer, const DomainView& view) {
  const BufferLayout& layout = view.layout;
  return slotJob(buffer, view, "combine partials", kPhaseNetPartialsReady, true, layout.netCombineSend,
                 layout.netCombineRecv, layout.netCombineRowBytes, true);
}

}  // namespace nccl_moe
