#include "tools/perf/run_basics.h"

#include <nlohmann/json.hpp>

namespace nccl_moe::perf {

RunBasics runBasicsOf(const Options& o, int ranks, const std::string& device, const std::string& version) {
  RunBasics run;
  run.ranks = ranks;
  run.device = device;
  run.experts = o.experts;
  run.topk = o.topk;
  run.hidden = o.hidden;
  run.sms = o.sms;
  run.iters = o.iters;
  run.warmup = o.warmup;
  run.check = o.check != 0;
  run.version = version;
  return run;
}

void writeRunBasics(const RunBasics& run, nlohmann::ordered_json* doc) {
  nlohmann::ordered_json& d = *doc;
  d["version"] = run.version;
  d["ranks"] = run.ranks;
  d["device"] = run.device;
  d["experts"] = run.experts;
  d["topk"] = run.topk;
  d["hidden"] = run.hidden;
  d["sms"] = run.sms;
  d["iters"] = run.iters;
  d["warmup"] = run.warmup;
  d["check"] = run.check;
}

}  // namespace nccl_moe::perf
