// What every nccl-moe-perf run reports about itself, in either mode (the high-throughput sweep and
// --low-latency): the group, the shape it sweeps, the SM budget, the timing settings and the
// versions. Each mode's run description extends it (table.h, ll_report.h).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "tools/perf/options.h"

namespace nccl_moe::perf {

struct RunBasics {
  int ranks = 1;
  std::string device;
  int experts = 0, topk = 0, hidden = 0;
  int sms = 0, iters = 0, warmup = 0;
  bool check = false;
  std::string version;  // "0.1.0 (NCCL 2.28.9)": this tool's and the NCCL it loaded
};

// The basics of a run of `ranks` ranks on `device` with these options.
RunBasics runBasicsOf(const Options& o, int ranks, const std::string& device, const std::string& version);

// The basics' keys of the JSON document, in this order: version, ranks, device, experts, topk,
// hidden, sms, iters, warmup, check.
void writeRunBasics(const RunBasics& run, nlohmann::ordered_json* doc);

}  // namespace nccl_moe::perf
