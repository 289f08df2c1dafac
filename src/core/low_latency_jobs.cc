#include "core/low_latency_jobs.h"

namespace nccl_moe {

namespace {

struct KindInfo {
  const char* what;
  int phase;
  int64_t sendRegion;
  int64_t recvRegion;
  int64_t rowBytes;
  int64_t tailBytes;
};

KindInfo kindInfo(int kind, const LowLatencyRegions& r, const LowLatencyShape& shape) {
  const int64_t header = static_cast<int64_t>(sizeof(LowLatencyNetTail));
  switch (kind) {
    case kLowLatencyNetDispatch:
      return {"low-latency dispatch slots", kPhaseLowLatencyDispatchNetwork, r.netDispatchSend, r.netDispatchRecv,
              r.slotBytes, lowLatencyDispatchTailBytes(shape)};
    case kLowLatencyNetWeights:
      return {"low-latency combine weights", kPhaseLowLatencyCombineWeights, r.netWeightsSend, r.netWeightsRecv,
              r.weightsBytes, lowLatencyNetTailBytes(shape)};
    default:
      return {"low-latency combine partials", kPhaseLowLatencyCombinePartials, r.netCombineSend, r.netCombineRecv,
              r.combineRowBytes, header};
  }
}

}  // namespace

LowLatencyNetJobs lowLatencyNetJobs(uint8_t* buffer, uint8_t* tails, const LowLatencyShape& shape, int rank) {
  LowLatencyNetJobs jobs;
  const LowLatencyRegions regions = lowLatencyRegionsOf(shape);
  const int M = shape.domains(), home = shape.domainOf(rank);
  const int64_t N = shape.maxTokens, tailStride = lowLatencyNetTailBytes(shape);
  for (int kind = 0; kind < kLowLatencyNetKinds; ++kind) {
    const KindInfo info = kindInfo(kind, regions, shape);
    for (int parity = 0; parity < LowLatencyLimits::kParities; ++parity) {
      RailJob& job = jobs[kind][parity];
      job.what = info.what;
      job.phase = info.phase;
      job.bare = true;
      if (M == 1) continue;
      uint8_t* base = buffer + parity * regions.perParity;
      for (int n = 0; n < M; ++n) {
        if (n == home) continue;
        const int64_t slot = n < home ? n : n - 1;  // DomainView::otherDomainSlot
        RailLeg leg;
        leg.peer = n;
        leg.send = base + info.sendRegion + slot * N * info.rowBytes;
        leg.recv = base + info.recvRegion + slot * N * info.rowBytes;
        leg.rows = leg.sendRows = leg.recvRows = N;
        leg.rowBytes = static_cast<size_t>(info.rowBytes);
        leg.sendTail = tails + lowLatencyNetTailIndex(kind, parity, 0, n, M) * tailStride;
        leg.recvTail = tails + lowLatencyNetTailIndex(kind, parity, 1, n, M) * tailStride;
        leg.tailBytes = static_cast<size_t>(info.tailBytes);
        job.legs.push_back(leg);
      }
    }
  }
  return jobs;
}

}  // namespace nccl_moe
