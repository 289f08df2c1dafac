#include "plan/plan_choice.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "misc/numerics.h"
#include "plan/buffer_layout.h"
#include "plan/moe_shape.h"

namespace nccl_moe::plan {

using nccl_moe::ShapeLimits;

namespace {

std::string number(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

Status invalid(const std::string& message) { return Status::invalidArgument("plan choice: " + message); }

Status checkInput(const PlanInput& in) {
  const CostShape& s = in.shape;
  if (in.ranks < 1) return invalid("ranks (" + std::to_string(in.ranks) + ") must be at least 1");
  if (in.overrideDomainSize < 0 || (in.overrideDomainSize > 0 && in.ranks % in.overrideDomainSize != 0)) {
    return invalid("NCCL_MOE_DOMAIN_SIZE=" + std::to_string(in.overrideDomainSize) + " does not divide the " +
                   std::to_string(in.ranks) + " ranks into equal NVLink domains");
  }
  if (s.experts < 1 || s.experts % in.ranks != 0) {
    return invalid("experts (" + std::to_string(s.experts) + ") must be a positive multiple of the " +
                   std::to_string(in.ranks) + " ranks");
  }
  if (s.topk < 1 || s.topk > s.experts) {
    return invalid("top-k (" + std::to_string(s.topk) + ") must be in [1, experts = " + std::to_string(s.experts) +
                   "]");
  }
  if (s.hidden < 1 || s.hidden > ShapeLimits::kMaxHiddenSize) {
    return invalid("hidden (" + std::to_string(s.hidden) + ") must be in [1, " +
                   std::to_string(ShapeLimits::kMaxHiddenSize) + "]");
  }
  if (s.tokensPerRank < 0 || s.tokensPerRank > ShapeLimits::kMaxTokensPerRank) {
    return invalid("tokens per rank (" + std::to_string(s.tokensPerRank) + ") must be in [0, " +
                   std::to_string(ShapeLimits::kMaxTokensPerRank) + "]");
  }
  if (!s.fp8Dispatch && s.dispatchElementBytes < 1) return invalid("dispatch element bytes must be positive");
  if (s.combineElementBytes < 1) return invalid("combine element bytes must be positive");
  if (in.sms < 1) return invalid("SMs (" + std::to_string(in.sms) + ") must be at least 1");
  return Status::ok();
}

// The grid: ranks per domain and why.
void chooseGrid(const PlanInput& in, int* ranksPerDomain, std::string* reason) {
  const std::string ranks = std::to_string(in.ranks);
  const int given = in.topologyDomainSize;
  if (in.overrideDomainSize > 0) {
    *ranksPerDomain = in.overrideDomainSize;
    *reason = "NCCL_MOE_DOMAIN_SIZE=" + std::to_string(in.overrideDomainSize) + " sets the ranks per domain";
    if (given > 0 && given != in.overrideDomainSize) *reason += " (the topology says " + std::to_string(given) + ")";
  } else if (!in.peerAccess) {
    *ranksPerDomain = 1;
    *reason = "no NVLink or peer access between the GPUs: every rank is its own domain, rows travel over NCCL";
  } else if (given > 0 && in.ranks % given == 0) {
    *ranksPerDomain = given;
    *reason = given == in.ranks ? "topology: all " + ranks + " ranks in one NVLink domain"
                                : "topology: " + std::to_string(in.ranks / given) + " NVLink domains of " +
                                      std::to_string(given) + " consecutive ranks";
  } else if (given > 0 || in.topologyKnown) {
    *ranksPerDomain = 1;
    *reason = given > 0 ? "topology: NVLink domains of " + std::to_string(given) + " ranks do not divide the " + ranks +
                              " ranks"
                        : "topology: the NVLink domains differ in size or hold non-consecutive ranks";
    *reason += "; no equal grid, so every rank is its own domain (set NCCL_MOE_DOMAIN_SIZE to override)";
  } else {
    *ranksPerDomain = in.ranks;
    *reason = "topology unknown (not probed, or NCCL_MOE_TOPOLOGY=0): all " + ranks +
              " ranks taken as one NVLink domain (set NCCL_MOE_DOMAIN_SIZE to split)";
  }
}

LinkPrediction predict(double networkRowsPerToken, double nvlinkRowsPerToken, double tokens, int64_t rowBytes,
                       double nvlinkGBps, double networkGBps) {
  // Same products in the same order as the cost model (rows per rank, then bytes), so that the
  // numbers agree to the bit with what estimateCost reports for uniform routing.
  LinkPrediction p;
  p.networkBytes = networkRowsPerToken * tokens * static_cast<double>(rowBytes);
  p.nvlinkBytes = nvlinkRowsPerToken * tokens * static_cast<double>(rowBytes);
  p.networkSeconds = p.networkBytes / (networkGBps * 1e9);
  p.nvlinkSeconds = p.nvlinkBytes / (nvlinkGBps * 1e9);
  return p;
}

}  // namespace

const char* toString(PlanKind kind) {
  switch (kind) {
    case PlanKind::kDirect: return "direct";
    case PlanKind::kTwoHop: return "two-hop";
    case PlanKind::kNcclOnly: return "nccl-only";
  }
  return "?";
}

int64_t twoHopStagingBytes(const CostShape& shape, int ranks, int domains) {
  GroupDims dims;
  dims.experts = shape.experts;
  dims.hidden = shape.hidden;
  dims.maxTokens = shape.tokensPerRank;
  dims.metaWidth = shape.topk;
  dims.rowType = static_cast<int>(shape.dispatchElementBytes == 4 ? ElementType::kFp32 : ElementType::kBf16);
  dims.fp8 = shape.fp8Dispatch;
  dims.scaleBlocks = fp8BlockCount(shape.hidden);
  return networkStagingBytes(dims, ranks, domains);
}

Status choosePlan(const PlanInput& input, ChosenPlan* plan) {
  *plan = ChosenPlan{};
  if (Status s = checkInput(input); !s.isOk()) return s;
  const CostShape& shape = input.shape;
  int d = 0;
  std::string reason;
  chooseGrid(input, &d, &reason);
  ChosenPlan chosen;
  chosen.ranksPerDomain = d;
  chosen.domains = input.ranks / d;
  chosen.kind = d == input.ranks ? PlanKind::kDirect : d == 1 ? PlanKind::kNcclOnly : PlanKind::kTwoHop;
  if (chosen.kind == PlanKind::kTwoHop && input.sms < 2) {
    return invalid("the two-hop plan needs at least 2 SMs (one per role), got " + std::to_string(input.sms));
  }
  const bool assumedNvlink = !(input.nvlinkGBps > 0);
  const bool assumedNetwork = !(input.networkGBps > 0);
  chosen.nvlinkGBps = assumedNvlink ? kAssumedNvlinkGBps : input.nvlinkGBps;
  chosen.networkGBps = assumedNetwork ? kAssumedNetworkGBps : input.networkGBps;
  chosen.dispatchRowBytes = dispatchRowBytes(shape);
  chosen.combineRowBytes = combineRowBytes(shape);

  // Uniform routing on the chosen grid, node-dedup: per token a rank sends one row per other
  // domain it needs over the network, and its own-domain rows plus the rows it forwards as a rail
  // peer over NVLink. Combine moves the same rows backwards.
  const RoutingStats perToken = uniformRoutingStats(shape.experts, shape.topk, input.ranks, d);
  const double tokens = shape.tokensPerRank;
  const double nvlinkRows = perToken.localRanks + perToken.forwardedRows;
  chosen.dispatch = predict(perToken.remoteDomains, nvlinkRows, tokens, chosen.dispatchRowBytes, chosen.nvlinkGBps,
                            chosen.networkGBps);
  chosen.combine = predict(perToken.remoteDomains, nvlinkRows, tokens, chosen.combineRowBytes, chosen.nvlinkGBps,
                           chosen.networkGBps);
  const double networkTime = chosen.dispatch.networkSeconds + chosen.combine.networkSeconds;
  const double nvlinkTime = chosen.dispatch.nvlinkSeconds + chosen.combine.nvlinkSeconds;

  chosen.networkStagingBytes = twoHopStagingBytes(shape, input.ranks, chosen.domains);

  if (chosen.kind != PlanKind::kDirect) {
    // Chunk rows: a chunk is the unit one NCCL send carries and the forwarder waits for. About
    // 1 MiB of dispatch rows (rounded down, so a chunk never exceeds it) is well past the size
    // where NCCL point-to-point reaches its bandwidth, yet small enough that the NVLink fan-out
    // of the first chunk starts early; never more rows than a rank can send, never fewer than 1.
    const int64_t rows = kChunkTargetBytes / chosen.dispatchRowBytes;
    chosen.chunkRows = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(rows, shape.tokensPerRank)));
    const int64_t advisedChunks = (static_cast<int64_t>(shape.tokensPerRank) + chosen.chunkRows - 1) / chosen.chunkRows;
    chosen.chunksPerCall =
        chunkSlots(shape.tokensPerRank, static_cast<int>(std::min<int64_t>(advisedChunks, kDefaultChunksPerCall)));
    // Chunks in flight: the network transfer of chunk i overlaps the NVLink fan-out of chunk
    // i - 1, so two (double buffering) keep both links busy while NVLink is at least as slow as
    // the network. When the network is the slower link the forwarder waits on it and each
    // chunk's send latency shows; more outstanding chunks keep the NIC's queue full: 3 while the
    // network takes up to 4x the NVLink time, 4 beyond that and when there is no NVLink phase
    // (nccl-only). More would buy nothing: the staging buffer holds every row anyway.
    if (!(networkTime > 0)) {
      chosen.chunksInFlight = 2;
    } else if (!(nvlinkTime > 0)) {
      chosen.chunksInFlight = 4;
    } else {
      const double ratio = networkTime / nvlinkTime;
      chosen.chunksInFlight = ratio <= 1 ? 2 : ratio <= 4 ? 3 : 4;
    }
  }

  // SMs: one role per link; two-hop splits the budget in proportion to the links' times (the
  // slower link gets more), at least one SM each.
  switch (chosen.kind) {
    case PlanKind::kDirect: chosen.smsForForwarding = input.sms; break;
    case PlanKind::kNcclOnly: chosen.smsForNetworkStaging = input.sms; break;
    case PlanKind::kTwoHop: {
      const double total = networkTime + nvlinkTime;
      const double share = total > 0 ? networkTime / total : 0.5;
      const int staging = static_cast<int>(std::lround(share * input.sms));
      chosen.smsForNetworkStaging = std::clamp(staging, 1, input.sms - 1);
      chosen.smsForForwarding = input.sms - chosen.smsForNetworkStaging;
      break;
    }
  }

  if (chosen.kind == PlanKind::kTwoHop && (assumedNvlink || assumedNetwork)) {
    reason += "; link bandwidths assumed where unknown (NVLink " + number(chosen.nvlinkGBps, 0) + ", network " +
              number(chosen.networkGBps, 0) + " GB/s per GPU)";
  }
  chosen.reason = reason;
  *plan = std::move(chosen);
  return Status::ok();
}

NetworkChunking chunkSlots(int64_t slotRows, int requested) {
  NetworkChunking chunking;
  if (slotRows <= 0) return chunking;
  const int64_t wanted = std::max<int64_t>(1, std::min<int64_t>(requested, slotRows));
  chunking.rowsPerChunk = static_cast<int>((slotRows + wanted - 1) / wanted);
  // Equal chunks of ceil(rows / wanted) may need fewer than `wanted` to cover the slot.
  chunking.chunks = static_cast<int>((slotRows + chunking.rowsPerChunk - 1) / chunking.rowsPerChunk);
  return chunking;
}

std::string describePlan(const ChosenPlan& plan) {
  const std::string ranks = std::to_string(plan.ranksPerDomain * plan.domains);
  std::string text = toString(plan.kind);
  text += ": ";
  const std::string staging =
      ", network staging " + number(static_cast<double>(plan.networkStagingBytes) / (1 << 20), 1) + " MiB/rank";
  const std::string chunks = ", network in " + std::to_string(plan.chunksPerCall.chunks) + " chunk" +
                             (plan.chunksPerCall.chunks == 1 ? "" : "s") + " of " +
                             std::to_string(plan.chunksPerCall.rowsPerChunk) + " rows per call (advised " +
                             std::to_string(plan.chunkRows) + " rows, " + std::to_string(plan.chunksInFlight) +
                             " in flight)";
  switch (plan.kind) {
    case PlanKind::kDirect:
      text += "1 domain x " + ranks + " ranks, no network phase, " + std::to_string(plan.smsForForwarding) +
              " SMs on NVLink";
      break;
    case PlanKind::kTwoHop:
      text += std::to_string(plan.domains) + " domains x " + std::to_string(plan.ranksPerDomain) + " ranks" + chunks +
              ", SMs " + std::to_string(plan.smsForNetworkStaging) + " network + " +
              std::to_string(plan.smsForForwarding) + " NVLink" + staging;
      break;
    case PlanKind::kNcclOnly:
      text += ranks + " ranks, each its own domain" + chunks + ", " + std::to_string(plan.smsForNetworkStaging) +
              " SMs on the network" + staging;
      break;
  }
  return text + " (" + plan.reason + ")";
}

TopologyFacts topologyFacts(const topo::Cluster& cluster, const std::vector<topo::RankPlacement>& ranks) {
  TopologyFacts facts;
  const std::vector<topo::NvlinkDomain> domains = topo::nvlinkDomains(cluster);
  std::vector<int> domainOfNode(cluster.nodes.size(), -1);
  for (size_t d = 0; d < domains.size(); ++d) {
    for (int n : domains[d].nodes) domainOfNode[n] = static_cast<int>(d);
  }
  const int nodes = static_cast<int>(cluster.nodes.size());

  // Ranks per domain: every domain's ranks form one run of consecutive ranks, all runs equal.
  bool regular = !ranks.empty();
  std::vector<int> count(domains.size(), 0);
  std::vector<bool> finished(domains.size(), false);
  int current = -1;
  for (const auto& place : ranks) {
    if (place.node < 0 || place.node >= nodes) {
      regular = false;
      break;
    }
    const int d = domainOfNode[place.node];
    if (d != current) {
      if (current >= 0) finished[current] = true;
      if (finished[d]) regular = false;  // the domain's ranks are interleaved with another's
      current = d;
    }
    ++count[d];
  }
  if (regular) {
    int size = 0;
    for (int c : count) {
      if (c == 0) continue;
      if (size == 0) size = c;
      if (c != size) regular = false;
    }
    if (regular) facts.ranksPerDomain = size;
  }

  // Peer access and bandwidths, over the nodes that hold ranks.
  std::vector<std::vector<int>> gpusOfNode(cluster.nodes.size());
  for (const auto& place : ranks) {
    if (place.node < 0 || place.node >= nodes) continue;
    if (place.gpu < 0) {
      facts.peerAccess = false;  // a rank without a GPU reaches nobody's memory
      continue;
    }
    gpusOfNode[place.node].push_back(place.gpu);
  }
  bool nvlinkEverywhere = true;
  bool any = false;
  for (int n = 0; n < nodes; ++n) {
    if (gpusOfNode[n].empty()) continue;
    const topo::Node& node = cluster.nodes[n];
    nvlinkEverywhere = nvlinkEverywhere && topo::nvlinkGBpsPerGpu(node) > 0;
    for (int a : gpusOfNode[n]) {
      for (int b : gpusOfNode[n]) {
        if (a == b) continue;
        const size_t i = static_cast<size_t>(a), j = static_cast<size_t>(b);
        const bool nvlink = i < node.nvlinks.size() && j < node.nvlinks[i].size() && node.nvlinks[i][j] > 0;
        const bool p2p = i < node.p2pPerfRank.size() && j < node.p2pPerfRank[i].size() && node.p2pPerfRank[i][j] >= 0;
        if (!nvlink && !p2p) facts.peerAccess = false;
      }
    }
  }
  for (int n = 0; n < nodes; ++n) {
    if (gpusOfNode[n].empty()) continue;
    const topo::Node& node = cluster.nodes[n];
    const double intra = nvlinkEverywhere ? topo::nvlinkGBpsPerGpu(node) : topo::pcieGBpsPerGpu(node);
    const double network = topo::networkGBpsPerGpu(node);
    facts.nvlinkGBps = any ? std::min(facts.nvlinkGBps, intra) : intra;
    facts.networkGBps = any ? std::min(facts.networkGBps, network) : network;
    any = true;
  }
  return facts;
}

std::vector<topo::RankPlacement> everyGpuARank(const topo::Cluster& cluster) {
  std::vector<topo::RankPlacement> ranks;
  for (size_t n = 0; n < cluster.nodes.size(); ++n) {
    for (size_t g = 0; g < cluster.nodes[n].gpus.size(); ++g) {
      ranks.push_back({static_cast<int>(n), static_cast<int>(g)});
    }
  }
  return ranks;
}

}  // namespace nccl_moe::plan
