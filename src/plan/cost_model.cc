#include "plan/cost_model.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>

#include "topology/error.h"

namespace nccl_moe::plan {

namespace {

using topo::fail;

constexpr int kFp8BlockChannels = 128;  // one fp32 scale per 128 channels (src/reference/fp8.h)

// Where each rank sits: its node, its NVLink domain, and its index inside that domain.
struct RankMap {
  std::vector<int> node;
  std::vector<int> domain;
  std::vector<int> localIndex;
  std::vector<std::vector<int>> domainRanks;
};

RankMap mapRanks(const topo::Cluster& cluster) {
  RankMap map;
  std::vector<int> firstRankOfNode;
  int rank = 0;
  for (const auto& node : cluster.nodes) {
    firstRankOfNode.push_back(rank);
    rank += static_cast<int>(node.gpus.size());
  }
  map.node.resize(rank);
  map.domain.resize(rank);
  map.localIndex.resize(rank);
  std::vector<topo::NvlinkDomain> domains = topo::nvlinkDomains(cluster);
  for (size_t d = 0; d < domains.size(); ++d) {
    map.domainRanks.emplace_back();
    for (int n : domains[d].nodes) {
      for (size_t g = 0; g < cluster.nodes[n].gpus.size(); ++g) {
        int r = firstRankOfNode[n] + static_cast<int>(g);
        map.node[r] = n;
        map.domain[r] = static_cast<int>(d);
        map.localIndex[r] = static_cast<int>(map.domainRanks.back().size());
        map.domainRanks.back().push_back(r);
      }
    }
  }
  return map;
}

// Rows each rank sends and receives on each link, for both strategies.
struct RankRows {
  std::vector<double> out, in;
  explicit RankRows(size_t ranks = 0) : out(ranks, 0), in(ranks, 0) {}
  void move(int from, int to, double rows = 1) {
    out[from] += rows;
    in[to] += rows;
  }
};

struct Traffic {
  RankRows flatIntra, flatNetwork, dedupIntra, dedupNetwork;
  RoutingStats sums;  // totals; divided by tokens at the end
  explicit Traffic(size_t ranks)
      : flatIntra(ranks), flatNetwork(ranks), dedupIntra(ranks), dedupNetwork(ranks) {}
};

// Adds one token's rows. `experts` are distinct and in range.
class TokenCounter {
 public:
  TokenCounter(const RankMap& map, int expertsPerRank, Traffic& traffic)
      : map_(map), expertsPerRank_(expertsPerRank), traffic_(traffic) {}

  void add(int source, const std::vector<int>& experts) {
    const int home = map_.domain[source];
    hit_.clear();
    RoutingStats& s = traffic_.sums;
    for (int e : experts) {
      int r = e / expertsPerRank_;
      if (map_.domain[r] != home) s.remoteExpertPairs += 1;
      if (std::find(hit_.begin(), hit_.end(), r) == hit_.end()) hit_.push_back(r);
    }
    s.expertPairs += static_cast<double>(experts.size());
    s.ranks += static_cast<double>(hit_.size());
    s.tokens += 1;
    // Group destination ranks by domain.
    std::sort(hit_.begin(), hit_.end(), [&](int a, int b) {
      return std::make_pair(map_.domain[a], a) < std::make_pair(map_.domain[b], b);
    });
    for (size_t i = 0; i < hit_.size();) {
      int domain = map_.domain[hit_[i]];
      size_t end = i;
      while (end < hit_.size() && map_.domain[hit_[end]] == domain) ++end;
      if (domain == home) {
        for (size_t j = i; j < end; ++j) {
          if (hit_[j] == source) continue;
          s.localRanks += 1;
          traffic_.flatIntra.move(source, hit_[j]);
          traffic_.dedupIntra.move(source, hit_[j]);
        }
      } else {
        const auto& ranks = map_.domainRanks[domain];
        int relay = ranks[map_.localIndex[source] % ranks.size()];
        s.remoteDomains += 1;
        traffic_.dedupNetwork.move(source, relay);
        for (size_t j = i; j < end; ++j) {
          s.remoteRanks += 1;
          traffic_.flatNetwork.move(source, hit_[j]);
          if (hit_[j] != relay) {
            s.forwardedRows += 1;
            traffic_.dedupIntra.move(relay, hit_[j]);
          }
        }
      }
      i = end;
    }
  }

 private:
  const RankMap& map_;
  int expertsPerRank_;
  Traffic& traffic_;
  std::vector<int> hit_;
};

double unitInterval(std::mt19937_64& rng) {
  // (0, 1) from 53 random bits: std::mt19937_64's sequence is fixed by the standard, unlike the
  // standard distributions, so a seed gives the same samples everywhere.
  return (static_cast<double>(rng() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

void sampleTraffic(const RankMap& map, const CostShape& shape, const RoutingModel& routing,
                   int tokensPerRank, Traffic& traffic) {
  const int ranks = static_cast<int>(map.node.size());
  TokenCounter counter(map, shape.experts / ranks, traffic);
  std::mt19937_64 rng(routing.seed);
  std::vector<int> experts(shape.topk);
  std::vector<int> permutation(shape.experts);
  std::iota(permutation.begin(), permutation.end(), 0);
  std::vector<double> logWeight(shape.experts), keys(shape.experts);
  for (int e = 0; e < shape.experts; ++e) logWeight[e] = -routing.skew * std::log(e + 1.0);
  std::vector<int> order(shape.experts);
  for (int source = 0; source < ranks; ++source) {
    for (int t = 0; t < tokensPerRank; ++t) {
      if (routing.kind == RoutingKind::kUniform) {
        // Partial Fisher-Yates: the first k entries become a uniform k-subset.
        for (int i = 0; i < shape.topk; ++i) {
          int j = i + static_cast<int>(rng() % static_cast<uint64_t>(shape.experts - i));
          std::swap(permutation[i], permutation[j]);
          experts[i] = permutation[i];
        }
      } else {
        // Gumbel top-k: the k largest log(w) + Gumbel noise are a weighted draw without
        // replacement.
        for (int e = 0; e < shape.experts; ++e) keys[e] = logWeight[e] - std::log(-std::log(unitInterval(rng)));
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + shape.topk, order.end(),
                          [&](int a, int b) { return keys[a] > keys[b]; });
        std::copy(order.begin(), order.begin() + shape.topk, experts.begin());
      }
      counter.add(source, experts);
    }
  }
}

void traceTraffic(const RankMap& map, const CostShape& shape, const RoutingModel& routing, Traffic& traffic) {
  const int ranks = static_cast<int>(map.node.size());
  TokenCounter counter(map, shape.experts / ranks, traffic);
  std::vector<bool> seen(shape.experts);
  for (const auto& token : routing.trace) {
    auto where = [&] { return routing.traceSource + ":" + std::to_string(token.line) + ": "; };
    if (token.rank < 0 || token.rank >= ranks) {
      fail(where(), "rank ", token.rank, " is out of range [0, ", ranks, ") for this cluster");
    }
    if (static_cast<int>(token.experts.size()) != shape.topk) {
      fail(where(), token.experts.size(), " expert ids, expected top-k = ", shape.topk);
    }
    std::fill(seen.begin(), seen.end(), false);
    for (int e : token.experts) {
      if (e < 0 || e >= shape.experts) fail(where(), "expert ", e, " is out of range [0, ", shape.experts, ")");
      if (seen[e]) fail(where(), "expert ", e, " appears twice in one token");
      seen[e] = true;
    }
    counter.add(token.rank, token.experts);
  }
}

// Closed form for uniform routing with equal domains: every rank sees the same expectations.
void analyticTraffic(const RankMap& map, const CostShape& shape, int tokensPerRank, Traffic& traffic) {
  const int ranks = static_cast<int>(map.node.size());
  const int domains = static_cast<int>(map.domainRanks.size());
  traffic.sums = uniformRoutingStats(shape.experts, shape.topk, ranks, ranks / domains);
  const RoutingStats& s = traffic.sums;
  const double tokens = tokensPerRank;
  for (int r = 0; r < ranks; ++r) {
    for (RankRows* rows : {&traffic.flatIntra, &traffic.flatNetwork, &traffic.dedupIntra, &traffic.dedupNetwork}) {
      double perToken = rows == &traffic.flatIntra      ? s.localRanks
                        : rows == &traffic.flatNetwork  ? s.remoteRanks
                        : rows == &traffic.dedupIntra   ? s.localRanks + s.forwardedRows
                                                        : s.remoteDomains;
      rows->out[r] = rows->in[r] = perToken * tokens;
    }
  }
}

LinkLoad linkLoad(const RankRows& rows, int64_t rowBytes, const std::vector<double>& bandwidth,
                  const std::string& linkName) {
  LinkLoad load;
  load.gbytesPerSec = *std::min_element(bandwidth.begin(), bandwidth.end());
  for (size_t r = 0; r < rows.out.size(); ++r) {
    double sent = rows.out[r] * static_cast<double>(rowBytes);
    double received = rows.in[r] * static_cast<double>(rowBytes);
    load.bytesSent = std::max(load.bytesSent, sent);
    load.bytesReceived = std::max(load.bytesReceived, received);
    double busier = std::max(sent, received);
    if (busier <= 0) continue;
    if (bandwidth[r] <= 0) {
      fail("rank ", r, " must move ", busier, " bytes over ", linkName,
           " but its bandwidth is unknown (0); give the NIC rates / link speeds in the cluster file");
    }
    load.seconds = std::max(load.seconds, busier / (bandwidth[r] * 1e9));
  }
  return load;
}

// Combine moves the same rows the other way.
RankRows reversed(const RankRows& rows) {
  RankRows back;
  back.out = rows.in;
  back.in = rows.out;
  return back;
}

PhaseCost phaseCost(const std::string& phase, const std::string& strategy, int64_t rowBytes,
                    RankRows intra, RankRows network, const std::vector<double>& intraBw,
                    const std::vector<double>& networkBw, const std::string& intraName) {
  if (phase == "combine") {
    intra = reversed(intra);
    network = reversed(network);
  }
  PhaseCost cost;
  cost.phase = phase;
  cost.strategy = strategy;
  cost.rowBytes = rowBytes;
  cost.intra = linkLoad(intra, rowBytes, intraBw, intraName);
  cost.network = linkLoad(network, rowBytes, networkBw, "the network");
  cost.seconds = std::max(cost.intra.seconds, cost.network.seconds);
  cost.bottleneck = cost.seconds == 0 ? "none" : cost.network.seconds >= cost.intra.seconds ? "network" : intraName;
  return cost;
}

std::string describe(const CostShape& shape, const RoutingModel& routing, bool analytic, int tokensPerRank) {
  std::ostringstream text;
  if (routing.kind == RoutingKind::kTrace) {
    text << "trace " << routing.traceSource << " (" << routing.trace.size() << " tokens)";
    return text.str();
  }
  if (routing.kind == RoutingKind::kSkewed) {
    text << "skewed top-" << shape.topk << " of " << shape.experts << " experts (popularity ~ 1/(e+1)^"
         << routing.skew << ", expert 0 hottest, rank 0 holds the hottest)";
  } else {
    text << "uniform top-" << shape.topk << " of " << shape.experts << " experts";
  }
  if (analytic) {
    text << " (closed form)";
  } else {
    text << " (Monte-Carlo, " << tokensPerRank << " tokens/rank, seed " << routing.seed << ")";
  }
  return text.str();
}

}  // namespace

int64_t dispatchRowBytes(const CostShape& shape) {
  if (shape.fp8Dispatch) {
    int64_t blocks = (shape.hidden + kFp8BlockChannels - 1) / kFp8BlockChannels;
    return shape.hidden + 4 * blocks;
  }
  return static_cast<int64_t>(shape.hidden) * shape.dispatchElementBytes;
}

int64_t combineRowBytes(const CostShape& shape) {
  return static_cast<int64_t>(shape.hidden) * shape.combineElementBytes;
}

double probabilityNoneOf(int experts, int topk, int m) {
  if (m <= 0) return 1;
  if (experts - m < topk) return 0;
  double p = 1;
  for (int i = 0; i < topk; ++i) p *= static_cast<double>(experts - m - i) / (experts - i);
  return p;
}

RoutingStats uniformRoutingStats(int experts, int topk, int ranks, int ranksPerDomain) {
  const int domains = ranks / ranksPerDomain;
  const int local = experts / ranks;
  const double pRank = 1 - probabilityNoneOf(experts, topk, local);
  const double pDomain = 1 - probabilityNoneOf(experts, topk, local * ranksPerDomain);
  RoutingStats s;
  s.expertPairs = topk;
  s.remoteExpertPairs = topk * static_cast<double>(ranks - ranksPerDomain) / ranks;
  s.ranks = ranks * pRank;
  s.localRanks = (ranksPerDomain - 1) * pRank;
  s.remoteRanks = (ranks - ranksPerDomain) * pRank;
  s.remoteDomains = (domains - 1) * pDomain;
  s.forwardedRows = static_cast<double>(domains - 1) * (ranksPerDomain - 1) * pRank;
  s.tokens = 1;  // already per token
  return s;
}

std::vector<TraceToken> parseRoutingTrace(std::istream& in, const std::string& source) {
  std::vector<TraceToken> tokens;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) fail(source, ":", number, ": expected '<rank>: <expert ids>'");
    TraceToken token;
    token.line = number;
    std::istringstream rankText(line.substr(0, colon));
    if (!(rankText >> token.rank) || !(rankText >> std::ws).eof()) {
      fail(source, ":", number, ": '", line.substr(0, colon), "' is not a rank number");
    }
    std::istringstream ids(line.substr(colon + 1));
    std::string word;
    while (ids >> word) {
      size_t used = 0;
      int id = -1;
      try {
        id = std::stoi(word, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != word.size()) fail(source, ":", number, ": '", word, "' is not an expert id");
      token.experts.push_back(id);
    }
    if (token.experts.empty()) fail(source, ":", number, ": no expert ids after the colon");
    tokens.push_back(std::move(token));
  }
  if (tokens.empty()) fail(source, ": the trace holds no tokens");
  return tokens;
}

CostReport estimateCost(const topo::Cluster& cluster, const CostShape& shape, const RoutingModel& routing) {
  const int ranks = cluster.gpuCount();
  if (ranks == 0) fail("the cluster has no GPUs to plan for");
  if (shape.experts <= 0 || shape.experts % ranks != 0) {
    fail("experts (", shape.experts, ") must be a positive multiple of the EP size (", ranks, " GPUs)");
  }
  if (shape.topk < 1 || shape.topk > shape.experts) {
    fail("top-k (", shape.topk, ") must be in [1, experts = ", shape.experts, "]");
  }
  if (shape.hidden <= 0) fail("hidden (", shape.hidden, ") must be positive");
  if (routing.kind != RoutingKind::kTrace && shape.tokensPerRank <= 0) {
    fail("tokens per rank (", shape.tokensPerRank, ") must be positive");
  }
  if (routing.kind == RoutingKind::kSkewed && !(routing.skew >= 0)) fail("skew (", routing.skew, ") must be >= 0");

  RankMap map = mapRanks(cluster);
  CostReport report;
  report.ranks = ranks;
  report.domains = static_cast<int>(map.domainRanks.size());
  bool equalDomains = true;
  for (const auto& domain : map.domainRanks) {
    report.largestDomainGpus = std::max(report.largestDomainGpus, static_cast<int>(domain.size()));
    equalDomains = equalDomains && domain.size() == map.domainRanks.front().size();
  }

  // Intra-domain traffic rides NVLink when every GPU has it, else PCIe peer-to-peer.
  bool nvlink = std::all_of(cluster.nodes.begin(), cluster.nodes.end(),
                            [](const topo::Node& node) { return topo::nvlinkGBpsPerGpu(node) > 0; });
  report.intraLinkName = nvlink ? "NVLink" : "PCIe";
  std::vector<double> intraBw(ranks), networkBw(ranks);
  for (int r = 0; r < ranks; ++r) {
    const topo::Node& node = cluster.nodes[map.node[r]];
    intraBw[r] = nvlink ? topo::nvlinkGBpsPerGpu(node) : topo::pcieGBpsPerGpu(node);
    networkBw[r] = topo::networkGBpsPerGpu(node);
  }

  Traffic traffic(ranks);
  int sampleTokens = routing.sampleTokensPerRank > 0 ? routing.sampleTokensPerRank : shape.tokensPerRank;
  bool analytic = routing.kind == RoutingKind::kUniform && !routing.monteCarlo && equalDomains;
  if (routing.kind == RoutingKind::kTrace) {
    traceTraffic(map, shape, routing, traffic);
  } else if (analytic) {
    analyticTraffic(map, shape, shape.tokensPerRank, traffic);
  } else {
    sampleTraffic(map, shape, routing, sampleTokens, traffic);
    // Scale sampled rows to the real token count per rank.
    double scale = static_cast<double>(shape.tokensPerRank) / sampleTokens;
    for (RankRows* rows : {&traffic.flatIntra, &traffic.flatNetwork, &traffic.dedupIntra, &traffic.dedupNetwork}) {
      for (auto& v : rows->out) v *= scale;
      for (auto& v : rows->in) v *= scale;
    }
  }
  report.routing = describe(shape, routing, analytic, sampleTokens);
  if (routing.kind == RoutingKind::kUniform && !routing.monteCarlo && !equalDomains) {
    report.routing += "; NVLink domains differ in size, so sampled instead of the closed form";
  }

  RoutingStats totals = traffic.sums;
  double tokens = static_cast<double>(std::max<int64_t>(totals.tokens, 1));
  report.perToken = totals;
  for (double* value : {&report.perToken.expertPairs, &report.perToken.remoteExpertPairs, &report.perToken.ranks,
                        &report.perToken.localRanks, &report.perToken.remoteRanks, &report.perToken.remoteDomains,
                        &report.perToken.forwardedRows}) {
    *value /= tokens;
  }
  report.perToken.tokens = analytic ? static_cast<int64_t>(ranks) * shape.tokensPerRank : totals.tokens;

  const std::string& intraName = report.intraLinkName;
  for (const auto& [phase, rowBytes] : {std::make_pair(std::string("dispatch"), dispatchRowBytes(shape)),
                                        std::make_pair(std::string("combine"), combineRowBytes(shape))}) {
    report.phases.push_back(phaseCost(phase, "node-dedup", rowBytes, traffic.dedupIntra, traffic.dedupNetwork,
                                      intraBw, networkBw, intraName));
    report.phases.push_back(phaseCost(phase, "flat", rowBytes, traffic.flatIntra, traffic.flatNetwork, intraBw,
                                      networkBw, intraName));
  }
  double intraTime = 0, networkTime = 0;
  for (const auto& phase : report.phases) {
    if (phase.strategy != "node-dedup") continue;
    intraTime += phase.intra.seconds;
    networkTime += phase.network.seconds;
  }
  report.bottleneck = intraTime == 0 && networkTime == 0 ? "none" : networkTime >= intraTime ? "network" : intraName;
  return report;
}

}  // namespace nccl_moe::plan
