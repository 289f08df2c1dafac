// Which HybridEP plan the library runs for a communicator: one NVLink domain (direct), several
// equal NVLink domains joined by the network (two-hop), or no peer access at all (NCCL only), with
// the chunking, the SM split and the buffer size of the network phase. Pure C++ (no CUDA, no NCCL
// calls): the communicator calls it at creation, nccl-moe-topo plan prints it for a cluster file.
//
// Rules (choosePlan), first match wins; D is the number of ranks per NVLink domain:
//   1. NCCL_MOE_DOMAIN_SIZE (overrideDomainSize) when set: it must divide the rank count.
//   2. GPUs without NVLink or peer access (peerAccess false): D = 1.
//   3. a known topology whose equal domains of consecutive ranks divide the rank count: D = that.
//   4. a known topology without such domains (sizes differ, ranks interleaved): D = 1.
//   5. no topology (not probed, NCCL_MOE_TOPOLOGY=0): D = ranks, the single-domain path.
// Then D == ranks -> direct, D == 1 < ranks -> nccl-only, else two-hop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "misc/status.h"
#include "plan/cost_model.h"
#include "topology/assembly.h"
#include "topology/model.h"

namespace nccl_moe::plan {

enum class PlanKind {
  kDirect,    // every rank in one NVLink domain (an 8-GPU node, an NVL72 rack): NVLink only
  kTwoHop,    // equal NVLink domains of D consecutive ranks (rank = domain * D + local index):
              // a token crosses the network once, to the rail peer (same local index) of each
              // destination domain, and fans out over NVLink there
  kNcclOnly,  // no NVLink / peer access between GPUs (PCIe-only boxes): every rank is its own
              // domain (D = 1) and every row travels over NCCL point-to-point
};

// "direct", "two-hop", "nccl-only".
const char* toString(PlanKind kind);

// Assumed per-GPU bandwidths (GB/s per direction) when the topology does not give them:
// NVLink4 through NVSwitch (H100) and one 400 Gb/s NIC per GPU.
inline constexpr double kAssumedNvlinkGBps = 450;
inline constexpr double kAssumedNetworkGBps = 50;

// A network chunk carries about this many bytes of dispatch rows.
inline constexpr int64_t kChunkTargetBytes = 1 << 20;
// The library runs at most this many network chunks per dispatch / combine unless told otherwise
// (NCCL_MOE_NET_CHUNKS): each costs a few microseconds of host time per call.
inline constexpr int kDefaultChunksPerCall = 4;

// How the slots of `slotRows` rows split into network chunks: at most `requested` (>= 1) chunks of
// rowsPerChunk rows, the last one possibly shorter, none empty.
struct NetworkChunking {
  int chunks = 1;
  int rowsPerChunk = 0;
};
NetworkChunking chunkSlots(int64_t slotRows, int requested);

struct PlanInput {
  int ranks = 0;
  bool topologyKnown = false;  // a cluster model was assembled (ClusterView::fingerprint not "")
  int topologyDomainSize = 0;  // ranks per NVLink domain per the topology when the domains are
                               // equal and hold consecutive ranks; 0: unknown or irregular
  bool peerAccess = true;      // the GPUs of a node reach each other (NVLink or CUDA P2P)
  int overrideDomainSize = 0;  // NCCL_MOE_DOMAIN_SIZE; 0: none
  // experts, topk (the max top-k), tokensPerRank (the max tokens per rank), hidden, and the row
  // formats (fp8Dispatch, dispatchElementBytes, combineElementBytes).
  CostShape shape;
  int sms = 24;            // SMs one call may use, split between the roles
  double nvlinkGBps = 0;   // per GPU per direction; 0: unknown, kAssumedNvlinkGBps
  double networkGBps = 0;  // per GPU per direction; 0: unknown, kAssumedNetworkGBps
};

// Bytes one rank moves per call for uniform routing (the cost model's node-dedup closed form on the
// chosen grid: the busier direction of the busiest GPU) and the time each link needs for them.
struct LinkPrediction {
  double networkBytes = 0;
  double nvlinkBytes = 0;
  double networkSeconds = 0;
  double nvlinkSeconds = 0;
};

struct ChosenPlan {
  PlanKind kind = PlanKind::kDirect;
  int ranksPerDomain = 0;
  int domains = 0;
  int chunkRows = 0;       // advised rows per network chunk; 0 without a network phase
  int chunksInFlight = 0;  // advised network chunks outstanding per peer; 0 without a network phase
  // What the library runs per dispatch / combine: chunkSlots(tokensPerRank, chunks of chunkRows,
  // at most kDefaultChunksPerCall); chunks = 0 without a network phase.
  NetworkChunking chunksPerCall{0, 0};
  // The SM budget split between the roles: staging rows for the network (and receiving them)
  // and moving rows over NVLink (direct rows and forwarding of rows that came over the network).
  int smsForNetworkStaging = 0;
  int smsForForwarding = 0;
  LinkPrediction dispatch;
  LinkPrediction combine;
  double nvlinkGBps = 0;  // the bandwidths the times use (given or assumed)
  double networkGBps = 0;
  int64_t dispatchRowBytes = 0;
  int64_t combineRowBytes = 0;
  // Network staging of the two-hop path, per rank: what the library's buffer adds for it
  // (twoHopStagingBytes). 0 for direct; nccl-only uses it with domains = ranks.
  int64_t networkStagingBytes = 0;
  std::string reason;  // why this plan, in words
};

// Bytes the two-hop regions add to a rank's buffer (plan/buffer_layout.h networkStagingBytes, the
// arithmetic the library lays its buffer out with): per other domain a routing meta slot and a
// send and a receive slot of maxTokens dispatch rows (FP8: codes and scales, each 16-byte
// padded), a send slot of combine rows (row 16-byte padded + top-k fp32 gradients), and per domain
// a receive slot of combine rows, each region 256-byte aligned.
int64_t twoHopStagingBytes(const CostShape& shape, int ranks, int domains);

// Fails (ncclInvalidArgument) on an unusable input: ranks < 1, an override that does not divide
// the rank count, experts not a positive multiple of the rank count, top-k outside [1, experts],
// hidden < 1, tokens < 0, SMs < 1 (< 2 for two-hop).
Status choosePlan(const PlanInput& input, ChosenPlan* plan);

// One line for logs, e.g. "two-hop: 4 domains x 8 ranks, chunks of 73 rows, 3 in flight, SMs 19
// network + 5 NVLink, network staging 336.4 MiB/rank (topology: 4 NVLink domains of 8 consecutive
// ranks)".
std::string describePlan(const ChosenPlan& plan);

// What a cluster model says about the ranks placed on it.
struct TopologyFacts {
  int ranksPerDomain = 0;  // ranks per NVLink domain when every domain holds the same number of
                           // ranks and they are consecutive; else 0
  bool peerAccess = true;  // every pair of rank GPUs in a node has NVLink or CUDA P2P access
  double nvlinkGBps = 0;   // per GPU: NVLink when every node has it, else PCIe (the cost model's
  double networkGBps = 0;  // intra-domain link), and the network; min over nodes with ranks
};

// ranks[r] = where rank r runs (topology/assembly.h). A node without NVLink is an NVLink domain
// of its own in the model (topo::nvlinkDomains); its peerAccess comes from CUDA P2P
// (Node::p2pPerfRank >= 0), false when unknown.
TopologyFacts topologyFacts(const topo::Cluster& cluster, const std::vector<topo::RankPlacement>& ranks);

// Every GPU of the cluster a rank, node by node (the cost model's numbering).
std::vector<topo::RankPlacement> everyGpuARank(const topo::Cluster& cluster);

}  // namespace nccl_moe::plan
