// Routing traces (nccl-moe-topo plan --trace FILE): the text parser, then the cost model on the
// parsed tokens, whose range checks (rank, expert id, k, duplicates) guard the arithmetic.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_common.h"
#include "plan/cost_model.h"
#include "topology/presets.h"

namespace {

// Two small clusters built once: NVLink domains over a network, and PCIe only.
const nccl_moe::topo::Cluster& clusterFor(size_t tokens) {
  static const nccl_moe::topo::Cluster dgx = nccl_moe::topo::makePreset("dgx-h100", 2);
  static const nccl_moe::topo::Cluster pcie = nccl_moe::topo::makePreset("pcie-8gpu-2nic", 1);
  return tokens % 2 ? pcie : dgx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nccl_moe;
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));

  std::vector<plan::TraceToken> trace;
  if (!fuzz::acceptsOrRejects("parseRoutingTrace", [&] { trace = plan::parseRoutingTrace(in, "fuzz.trace"); }))
    return 0;
  if (trace.empty()) fuzz::bug("parseRoutingTrace accepted a trace without tokens");

  plan::CostShape shape;
  shape.experts = 64;
  shape.topk = static_cast<int>(trace.front().experts.size());
  shape.hidden = 7168;
  shape.fp8Dispatch = trace.size() % 3 == 0;
  plan::RoutingModel routing;
  routing.kind = plan::RoutingKind::kTrace;
  routing.trace = std::move(trace);
  routing.traceSource = "fuzz.trace";
  const topo::Cluster& cluster = clusterFor(routing.trace.size());
  fuzz::acceptsOrRejects("estimateCost", [&] { (void)plan::estimateCost(cluster, shape, routing); });
  return 0;
}
