#include <fstream>
#include <string>

#include "cluster_input.h"
#include "commands.h"
#include "ll_plan_output.h"
#include "output.h"
#include "plan/cost_model.h"
#include "plan/plan_choice.h"
#include "plan_output.h"
#include "topology/error.h"
#include "topology/json_io.h"
#include "topology/validate.h"

namespace nccl_moe::topo::cli {

namespace {
const std::string kHelp = std::string(
    "usage: nccl-moe-topo plan (FILE | --preset NAME) [--nodes N] --experts E --topk K\n"
    "                          --tokens T --hidden H [--fp8 | --dtype bf16|fp32]\n"
    "                          [--combine-dtype bf16|fp32] [--skew S | --trace FILE]\n"
    "                          [--monte-carlo] [--samples N] [--seed N] [--domain-size N]\n"
    "                          [--sms N] [--ll-tokens N] [--json] [-o FILE]\n"
    "\n"
    "Speed-of-light cost of one MoE dispatch and combine with every GPU of the cluster in the\n"
    "expert-parallel group (rank r owns experts [r*E/R, (r+1)*E/R)): bytes per GPU on the\n"
    "intra-domain link (NVLink, or PCIe P2P without it) and on the network, per phase, for\n"
    "node-dedup (a token crosses the network once per destination NVLink domain, then fans out\n"
    "over NVLink; HybridEP) and flat (every (token, rank) row goes straight to its rank); the\n"
    "time each link needs at its bandwidth, and the bottleneck. Then the plan the library would\n"
    "choose for this cluster and shape (direct, two-hop or nccl-only; chunking, SM split, network\n"
    "staging, bytes per rank for uniform routing), as a communicator of every GPU would.\n"
    "\n"
    "cluster:\n") + kClusterOptionsHelp +
    "shape:\n"
    "  --experts E        experts in total (a multiple of the GPU count)\n"
    "  --topk K           experts per token\n"
    "  --tokens T         tokens per rank\n"
    "  --hidden H         hidden size\n"
    "  --fp8              dispatch in FP8 E4M3 with one fp32 scale per 128 channels\n"
    "  --dtype D          dispatch element type without --fp8: bf16 (default) or fp32\n"
    "  --combine-dtype D  combine element type: bf16 (default) or fp32\n"
    "routing statistics (default: uniform top-k, closed form):\n"
    "  --skew S           expert popularity ~ 1/(e+1)^S (Zipf; expert 0 hottest), Monte-Carlo\n"
    "  --trace FILE       measured routing: lines '<source rank>: <k expert ids>' ('#' comments)\n"
    "  --monte-carlo      sample uniform routing instead of the closed form\n"
    "  --samples N        sampled tokens per rank (default: --tokens), scaled to --tokens\n"
    "  --seed N           random seed (default 1)\n"
    "plan choice:\n"
    "  --domain-size N    ranks per NVLink domain, as NCCL_MOE_DOMAIN_SIZE overrides it\n"
    "  --sms N            SMs per call to split between the roles (default 24)\n"
    "low-latency mode (docs/low_latency.md):\n"
    "  --ll-tokens N      also report the LL mode with lowLatencyMaxTokens N on the plan's domains:\n"
    "                     LL buffers per rank and, across domains, the network rows and bytes per\n"
    "                     rank of one call at T = N (node-deduplicated, against per expert and per\n"
    "                     rank) and the fixed-slot wire bytes\n"
    "output:\n"
    "  --json             the report as JSON\n"
    "  -o, --output FILE  write there instead of stdout\n";

int elementBytes(const Args& args, const std::string& option, const std::string& type) {
  if (type == "bf16") return 2;
  if (type == "fp32") return 4;
  args.usageError(option + " '" + type + "' is not bf16 or fp32");
}

}  // namespace

int runPlan(const Argv& argv) {
  if (printedHelp(argv, kHelp.c_str())) return 0;
  OptionSpec spec{{"--json", "--fp8", "--monte-carlo"},
                  {"--preset", "--nodes", "--experts", "--topk", "--tokens", "--hidden", "--dtype",
                   "--combine-dtype", "--skew", "--trace", "--samples", "--seed", "--domain-size", "--sms", "--ll-tokens",
                   "--output", "-o"},
                  1};
  Args args("plan", argv, spec);
  for (const char* required : {"--experts", "--topk", "--hidden"}) {
    if (!args.has(required)) args.usageError(std::string(required) + " is required");
  }
  if (!args.has("--tokens") && !args.has("--trace")) args.usageError("--tokens is required (or --trace)");
  if (args.flag("--fp8") && args.has("--dtype")) args.usageError("--fp8 and --dtype exclude each other");
  if (args.has("--skew") && args.has("--trace")) args.usageError("--skew and --trace exclude each other");

  plan::CostShape shape;
  shape.experts = static_cast<int>(args.integer("--experts", 0, 1, 1 << 20));
  shape.topk = static_cast<int>(args.integer("--topk", 0, 1, 1 << 10));
  shape.tokensPerRank = static_cast<int>(args.integer("--tokens", 0, 1, 1 << 24));
  shape.hidden = static_cast<int>(args.integer("--hidden", 0, 1, 1 << 20));
  shape.fp8Dispatch = args.flag("--fp8");
  std::string dispatchType = shape.fp8Dispatch ? "fp8" : args.value("--dtype", "bf16");
  if (!shape.fp8Dispatch) shape.dispatchElementBytes = elementBytes(args, "--dtype", dispatchType);
  std::string combineType = args.value("--combine-dtype", "bf16");
  shape.combineElementBytes = elementBytes(args, "--combine-dtype", combineType);

  plan::RoutingModel routing;
  routing.seed = static_cast<uint64_t>(args.integer("--seed", 1, 0, (1ll << 62)));
  routing.sampleTokensPerRank = static_cast<int>(args.integer("--samples", 0, 1, 1 << 24));
  routing.monteCarlo = args.flag("--monte-carlo");
  if (args.has("--skew")) {
    routing.kind = plan::RoutingKind::kSkewed;
    routing.skew = args.number("--skew", 0, 0);
  }
  if (auto trace = args.value("--trace")) {
    routing.kind = plan::RoutingKind::kTrace;
    std::ifstream in(*trace);
    if (!in) fail(*trace, ": cannot open the routing trace");
    routing.trace = plan::parseRoutingTrace(in, *trace);
    routing.traceSource = *trace;
  }

  Cluster cluster = loadCluster(args);
  requireValid(cluster, args.positionals().empty() ? "preset " + args.value("--preset", "") : args.positionals()[0]);
  if (routing.kind == plan::RoutingKind::kTrace && !args.has("--tokens")) {
    // Report the trace's busiest rank as "tokens per rank".
    std::vector<int> perRank(cluster.gpuCount(), 0);
    for (const auto& token : routing.trace) {
      if (token.rank >= 0 && token.rank < static_cast<int>(perRank.size())) ++perRank[token.rank];
    }
    for (int count : perRank) shape.tokensPerRank = std::max(shape.tokensPerRank, count);
  }
  plan::CostReport report = plan::estimateCost(cluster, shape, routing);

  // The library's choice for a communicator of every GPU (uniform routing).
  const plan::TopologyFacts facts = plan::topologyFacts(cluster, plan::everyGpuARank(cluster));
  plan::PlanInput input;
  input.ranks = cluster.gpuCount();
  input.topologyKnown = true;
  input.topologyDomainSize = facts.ranksPerDomain;
  input.peerAccess = facts.peerAccess;
  input.overrideDomainSize = static_cast<int>(args.integer("--domain-size", 0, 1, 1 << 24));
  input.shape = shape;
  input.sms = static_cast<int>(args.integer("--sms", 24, 1, 1 << 16));
  input.nvlinkGBps = facts.nvlinkGBps;
  input.networkGBps = facts.networkGBps;
  plan::ChosenPlan chosen;
  if (Status status = plan::choosePlan(input, &chosen); !status.isOk()) fail(status.message());

  PlanContext context{cluster, shape, routing, report, chosen, dispatchType, combineType};
  Json json = planToJson(context);
  std::string text = planToText(context);
  if (args.has("--ll-tokens")) {
    LowLatencyShape ll;
    ll.ranks = input.ranks;
    ll.ranksPerDomain = chosen.ranksPerDomain > 0 ? chosen.ranksPerDomain : input.ranks;
    ll.experts = shape.experts;
    ll.hidden = shape.hidden;
    ll.maxTopk = shape.topk;
    ll.maxTokens = static_cast<int>(args.integer("--ll-tokens", 0, 1, LowLatencyLimits::kMaxTokens));
    ll.fp8 = shape.fp8Dispatch;
    if (Status status = checkLowLatencyShape(ll); !status.isOk()) fail("--ll-tokens: ", status.message());
    json["low_latency"] = lowLatencyPlanToJson(ll, shape.topk);
    text += lowLatencyPlanToText(ll, shape.topk);
  }
  emit(args, args.flag("--json") ? dumpJson(json, 2) + "\n" : text);
  return 0;
}

}  // namespace nccl_moe::topo::cli
