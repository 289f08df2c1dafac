// The network groups of the two-hop low-latency path (docs/low_latency.md section 5): which regions
// of this rank's LL buffer, and which tails of its private memory, travel to and from the rail peer
// in every other domain, for each kind of message and host-side parity. Pure host arithmetic; the
// groups are bare (transport/rail_exchange.h): the LL kernels behind them check the tails.
#pragma once

#include <array>
#include <cstdint>

#include "plan/low_latency_shape.h"
#include "transport/low_latency_protocol.h"
#include "transport/rail_exchange.h"

namespace nccl_moe {

// [kind][host parity]: kLowLatencyNetDispatch (dispatch slots), kLowLatencyNetWeights (the combine's
// weights), kLowLatencyNetPartials (node partials). Each job has one leg per other domain n (peer n
// of the rail communicator): N rows of the kind's size from this rank's send region for n, into its
// receive region from n, and the tail (64 bytes; the weights' with their slot flags).
using LowLatencyNetJobs = std::array<std::array<RailJob, LowLatencyLimits::kParities>, kLowLatencyNetKinds>;

// `buffer`: this rank's LL buffer; `tails`: its private tail memory (lowLatencyNetTailIndex order,
// lowLatencyNetTailBytes each). Empty jobs (no legs) with one domain.
LowLatencyNetJobs lowLatencyNetJobs(uint8_t* buffer, uint8_t* tails, const LowLatencyShape& shape, int rank);

}  // namespace nccl_moe
