// Executes a HybridPlan on the CPU with one thread per rank: shared memory stands in for NVLink,
// rail channels (rail_network.h) for the network, a barrier separates the phases. Rows really
// move (bf16/fp32 copies, or E4M3 codes + scales quantised once at the source and forwarded
// unchanged), so the outputs can be compared with the CPU reference bit for bit.
#pragma once

#include <vector>

#include "misc/status.h"
#include "reference/hybrid_plan.h"
#include "reference/host_rows.h"
#include "reference/reference.h"

namespace nccl_moe::emulation {

struct EmulationOptions {
  Fp8Options fp8;
  int threads = 0;  // 0: one thread per rank
};

// What crossed each link while the emulation ran (row payload only, like predictTraffic).
struct MeasuredTraffic {
  LinkTraffic dispatch;
  LinkTraffic combine;
};

// Forward dispatch: every rank's outputs, as referenceDispatch produces them.
Status emulateDispatch(const HybridPlan& plan, const std::vector<HostRows>& x, bool withProbs,
                       const EmulationOptions& options, std::vector<RankDispatchOutput>* out,
                       MeasuredTraffic* measured);

// Combine (rows[d]: rank d's expert outputs, >= recvRows(d) rows) and, on the same path back,
// dispatch's probability gradient when gradRecvProbs is given (shaped like the dispatched probs;
// probsGrad then gets [T_s, K] / [T_s, E] per source rank).
Status emulateCombine(const HybridPlan& plan, const std::vector<HostRows>& rows,
                      const std::vector<std::vector<float>>* gradRecvProbs,
                      const EmulationOptions& options, std::vector<HostRows>* out,
                      std::vector<std::vector<float>>* probsGrad, MeasuredTraffic* measured);

}  // namespace nccl_moe::emulation
