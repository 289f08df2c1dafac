#include "core/network_jobs.h"

#include <algorithm>

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
    leg.rows = leg.sendRows = leg.recvRows = static_cast<int64_t>(rows);
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
    leg.rows = leg.sendRows = leg.recvRows = 1;
    leg.rowBytes = layout.metaSlotBytes;
    return leg;
  });
}

RailJob dispatchJob(uint8_t* buffer, const DomainView& view) {
  const BufferLayout& layout = view.layout;
  return slotJob(buffer, view, "dispatch rows", kPhaseNetRowsReady, false, layout.netDispatchSend,
                 layout.netDispatchRecv, layout.netDispatchRowBytes, false);
}

RailJob chunkOf(const RailJob& whole, const NetworkChunking& chunking, int chunk) {
  RailJob job = whole;
  job.chunk = chunk;
  job.chunks = chunking.chunks;
  const int64_t first = static_cast<int64_t>(chunk) * chunking.rowsPerChunk;
  for (RailLeg& leg : job.legs) {
    const int64_t rows = std::max<int64_t>(0, std::min<int64_t>(chunking.rowsPerChunk, leg.rows - first));
    const size_t offset = static_cast<size_t>(std::min(first, leg.rows)) * leg.rowBytes;
    leg.send = static_cast<const uint8_t*>(leg.send) + offset;
    leg.recv = static_cast<uint8_t*>(leg.recv) + offset;
    leg.rows = leg.sendRows = leg.recvRows = rows;
  }
  return job;
}

void fitToCounts(RailJob* chunk, int64_t firstRow, const int32_t* sendRows, const int32_t* recvRows) {
  for (RailLeg& leg : chunk->legs) {
    auto inChunk = [&](int64_t total) { return std::clamp<int64_t>(total - firstRow, 0, leg.rows); };
    leg.sendRows = inChunk(sendRows[leg.peer]);
    leg.recvRows = inChunk(recvRows[leg.peer]);
  }
}

NetworkJobs networkJobs(uint8_t* buffer, const DomainView& view) {
  NetworkJobs jobs;
  jobs.meta = metaJob(buffer, view);
  const NetworkChunking chunking{view.netChunks, view.netChunkRows};
  const RailJob dispatch = dispatchJob(buffer, view), combine = combineJob(buffer, view);
  for (int c = 0; c < chunking.chunks; ++c) {
    jobs.dispatch.push_back(chunkOf(dispatch, chunking, c));
    jobs.combine.push_back(chunkOf(combine, chunking, c));
  }
  return jobs;
}

RailJob combineJob(uint8_t* buffer, const DomainView& view) {
  const BufferLayout& layout = view.layout;
  return slotJob(buffer, view, "combine partials", kPhaseNetPartialsReady, true, layout.netCombineSend,
                 layout.netCombineRecv, layout.netCombineRowBytes, true);
}

}  // namespace nccl_moe
