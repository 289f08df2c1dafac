#include "tools/perf/two_hop_bytes.h"

#include <algorithm>

namespace nccl_moe::perf {

int64_t fixedWireBytesPerRank(const ncclMoeCommInfo_t& info) {
  const int domains = info.domains;
  if (domains <= 1) return 0;
  const int64_t slotRows = static_cast<int64_t>(info.netSlotRows);
  const int64_t perPeer = static_cast<int64_t>(info.metaSlotBytes) +
                          slotRows * static_cast<int64_t>(info.netDispatchRowBytes) +
                          slotRows * static_cast<int64_t>(info.netCombineRowBytes);
  return static_cast<int64_t>(domains - 1) * perPeer;
}

TwoHopBytes twoHopBytes(const HybridTraffic& traffic, int64_t dispatchRowBytes, int64_t combineRowBytes,
                        const ncclMoeCommInfo_t& info) {
  const int domains = info.domains;
  TwoHopBytes bytes;
  bytes.wireFixed = fixedWireBytesPerRank(info);
  const int ranks = static_cast<int>(traffic.networkRowsSent.size());
  if (ranks == 0) return bytes;
  const double R = ranks;
  bytes.nvlinkPayload = static_cast<double>(traffic.dispatch.nvlinkBytes + traffic.combine.nvlinkBytes) / R;
  bytes.networkPayload = static_cast<double>(traffic.dispatch.networkBytes + traffic.combine.networkBytes) / R;
  for (int r = 0; r < ranks; ++r) {
    // Rank r sends its own rows out, and returns one domain partial per row it received.
    const int64_t sent =
        traffic.networkRowsSent[r] * dispatchRowBytes + traffic.networkRowsReceived[r] * combineRowBytes;
    bytes.networkPayloadMax = std::max(bytes.networkPayloadMax, sent);
  }
  if (domains > 1) {
    const double meta = static_cast<double>(domains - 1) * static_cast<double>(info.metaSlotBytes);
    const double dispatchRows = static_cast<double>(traffic.dispatch.networkRows);
    const double combineRows = static_cast<double>(traffic.combine.networkRows);
    const double rows = dispatchRows * static_cast<double>(info.netDispatchRowBytes) +
                        combineRows * static_cast<double>(info.netCombineRowBytes);
    bytes.wireCountedRows = meta + rows / R;
  }
  return bytes;
}

double wireOverPayload(double wire, double payload) { return payload > 0 ? wire / payload : 0.0; }

}  // namespace nccl_moe::perf
