// nccl-moe-topo plan --ll-tokens N: what the low-latency mode would reserve and move on the plan's
// NVLink domains (docs/low_latency.md sections 1.1 and 10): LL buffer bytes per rank, and the
// network rows and bytes per rank of one LL call under uniform routing, with node deduplication
// against one row per (token, expert) and per (token, rank), and the fixed-slot wire bytes.
#pragma once

#include <string>

#include "plan/low_latency_shape.h"
#include "topology/json_io.h"

namespace nccl_moe::topo::cli {

// `shape`: the group as the plan splits it (ranksPerDomain = the plan's D), maxTokens = N;
// `topk`: K of the calls. The model is taken at T = N tokens per rank.
Json lowLatencyPlanToJson(const LowLatencyShape& shape, int topk);
std::string lowLatencyPlanToText(const LowLatencyShape& shape, int topk);

}  // namespace nccl_moe::topo::cli
