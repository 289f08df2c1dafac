// Speed-of-light cost model of one MoE dispatch and combine on a cluster: how many bytes each GPU
// moves over the intra-domain link (NVLink, or PCIe P2P without NVLink) and over the network,
// per phase, with and without node deduplication, and the time each link needs at its bandwidth.
//
// Model. EP group = every GPU of the cluster, ranks numbered node by node; rank r owns experts
// [r*L, (r+1)*L) with L = experts / ranks. A row is one token's payload: dispatch carries the
// hidden vector (FP8: hidden bytes + one fp32 scale per 128 channels; else hidden x 2 bytes),
// combine carries it back (hidden x combine element bytes). Rows a rank keeps for itself cross no
// link. Strategies:
//   flat        every (token, destination rank) row goes straight to its rank: rows to ranks in
//               the own NVLink domain over NVLink, rows to other domains over the network.
//   node-dedup  (HybridEP) a token crosses the network once per destination domain, to the GPU
//               with the same local index there, which fans it out over NVLink to the ranks of
//               its domain that need it; combine mirrors it with an in-domain partial sum.
// Per GPU the busier direction (send or receive) of each link bounds its time; the links work
// concurrently, so a phase takes max(intra-domain time, network time): a lower bound, no
// latency, no kernel or memory cost.
//
// Routing statistics: uniform top-k (closed form expectations, or a seeded Monte-Carlo),
// skewed expert popularity (Zipf exponent, Monte-Carlo), or a routing trace (see
// parseRoutingTrace for the format).
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "topology/model.h"

namespace nccl_moe::plan {

struct CostShape {
  int experts = 0;
  int topk = 0;
  int tokensPerRank = 0;       // ignored for traces (their token counts rule)
  int hidden = 0;
  bool fp8Dispatch = false;    // E4M3 + fp32 scale per 128 channels; else dispatchElementBytes
  int dispatchElementBytes = 2;
  int combineElementBytes = 2;
};

int64_t dispatchRowBytes(const CostShape& shape);
int64_t combineRowBytes(const CostShape& shape);

// One token of a trace: the rank it starts on and its top-k expert ids.
struct TraceToken {
  int rank = 0;
  std::vector<int> experts;
  int line = 0;  // where it was read, for messages
};

// Text trace, one token per line: "<source rank>: <expert id> <expert id> ...". Blank lines and
// lines starting with '#' are skipped. Throws topo::Error "source:line: what" on syntax errors;
// ranges (rank < EP size, expert < experts, k ids, distinct) are checked by estimateCost.
std::vector<TraceToken> parseRoutingTrace(std::istream& in, const std::string& source);

enum class RoutingKind { kUniform, kSkewed, kTrace };

struct RoutingModel {
  RoutingKind kind = RoutingKind::kUniform;
  bool monteCarlo = false;        // uniform only: sample instead of the closed form
  double skew = 0;                // kSkewed: popularity of expert e ~ 1 / (e + 1)^skew
  uint64_t seed = 1;
  int sampleTokensPerRank = 0;    // Monte-Carlo tokens per rank; 0: the shape's tokensPerRank
  std::vector<TraceToken> trace;  // kTrace
  std::string traceSource;        // for messages
};

// Per-token averages over all tokens (expectations for the closed form).
struct RoutingStats {
  double expertPairs = 0;        // k
  double remoteExpertPairs = 0;  // (token, expert) pairs whose expert lives in another domain
  double ranks = 0;              // distinct destination ranks, the source included
  double localRanks = 0;         // ... in the own domain, the source excluded
  double remoteRanks = 0;        // ... in other domains
  double remoteDomains = 0;      // distinct other domains a token needs
  double forwardedRows = 0;      // node-dedup: rows a receiving GPU passes on over NVLink
  int64_t tokens = 0;            // tokens counted (all ranks)
};

struct LinkLoad {
  double bytesSent = 0;      // per GPU, the most any GPU sends
  double bytesReceived = 0;  // per GPU, the most any GPU receives
  double gbytesPerSec = 0;   // link bandwidth per GPU per direction
  double seconds = 0;        // max over GPUs of max(sent, received) / bandwidth

  double bytes() const { return bytesSent > bytesReceived ? bytesSent : bytesReceived; }
};

struct PhaseCost {
  std::string phase;     // "dispatch" or "combine"
  std::string strategy;  // "node-dedup" or "flat"
  int64_t rowBytes = 0;
  LinkLoad intra;        // NVLink (or PCIe P2P)
  LinkLoad network;
  double seconds = 0;
  std::string bottleneck;  // the link name that takes longest, e.g. "network"
};

struct CostReport {
  int ranks = 0;
  int domains = 0;
  int largestDomainGpus = 0;
  std::string intraLinkName;  // "NVLink" or "PCIe"
  std::string routing;        // what statistics were used, in words
  RoutingStats perToken;
  std::vector<PhaseCost> phases;  // dispatch and combine, node-dedup then flat
  std::string bottleneck;         // of node-dedup dispatch + combine, e.g. "network"
};

// Throws topo::Error on an unusable shape or cluster (experts not a multiple of the EP size,
// unknown network bandwidth while the cluster has several domains, a trace out of range, ...).
CostReport estimateCost(const topo::Cluster& cluster, const CostShape& shape, const RoutingModel& routing);

// Closed-form helper, exposed for tests: P(a given set of m experts holds none of a token's k
// experts) for uniform top-k over `experts`, i.e. C(experts - m, k) / C(experts, k).
double probabilityNoneOf(int experts, int topk, int m);

// Closed-form per-token expectations for uniform top-k routing on `ranks` ranks split into equal
// NVLink domains of `ranksPerDomain` (what estimateCost uses for uniform routing on equal domains;
// tokens = 1). The busier direction of every GPU then carries, per token: network rows
// remoteDomains (node-dedup) or remoteRanks (flat); NVLink rows localRanks + forwardedRows
// (node-dedup) or localRanks (flat). Requires ranks % ranksPerDomain == 0 and experts % ranks == 0.
RoutingStats uniformRoutingStats(int experts, int topk, int ranks, int ranksPerDomain);

}  // namespace nccl_moe::plan
