#include "transport/protocol.h"

#include "transport/low_latency_protocol.h"

namespace nccl_moe {

const char* phaseName(int phase) {
  switch (phase) {
    case kPhaseMetaReady: return "layout: waiting for peers' routing";
    case kPhaseMetaRead: return "layout: waiting for peers to finish reading this rank's routing";
    case kPhaseRowsReady: return "dispatch: waiting for peers' token rows";
    case kPhaseRowsRead: return "dispatch: waiting for peers to finish pulling this rank's rows";
    case kPhasePartialsReady: return "combine: waiting for peers' partial rows";
    case kPhasePartialsRead: return "combine: waiting for peers to finish pulling this rank's partials";
    case kPhaseNetRowsReady: return "dispatch: waiting for the network phase (rows from rail peers)";
    case kPhaseNetPartialsReady: return "combine: waiting for the network phase (domain partials from rail peers)";
    case kPhaseWindowStaged: return "combine: waiting for peers' partial rows of a window";
    case kPhaseWindowRead: return "combine: waiting for peers to finish reading this rank's partials of a window";
    case kPhaseLowLatencyDispatchCredit:
      return "low-latency dispatch: waiting for the peer to release its landing slots of this parity";
    case kPhaseLowLatencyDispatchArrival: return "low-latency dispatch: waiting for the peer's token rows";
    case kPhaseLowLatencyCombineCredit:
      return "low-latency combine: waiting for the peer to release its landing rows of this parity";
    case kPhaseLowLatencyCombineArrival: return "low-latency combine: waiting for the peer's expert outputs";
    case kPhaseLowLatencyDispatchNetwork:
      return "low-latency dispatch: token slots to and from the rail peers over the network";
    case kPhaseLowLatencyCombineWeights:
      return "low-latency combine: top-k weights to and from the rail peers over the network";
    case kPhaseLowLatencyCombinePartials:
      return "low-latency combine: node partials to and from the rail peers over the network";
    default: return "unknown phase";
  }
}

}  // namespace nccl_moe
