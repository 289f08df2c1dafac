// The one-line summary the tuner logs at each communicator's init: its shape, what nccl-moe would
// plan for MoE traffic on it, the channel cap and the chained tuner.
#pragma once

#include <string>

#include "channel_cap.h"
#include "misc/comm_registry.h"

namespace nccl_moe {

// `chain` names the chained tuner ("" when none); `abiVersion` is the tuner ABI NCCL used.
std::string describeComm(const CommRecord& record, const ChannelCap& cap, const std::string& chain,
                         int abiVersion);

// "<what> of a uniformly routed MoE layer": the plan in words (one domain or HybridEP phases).
std::string describeMoePlan(const CommRecord& record);

}  // namespace nccl_moe
