// Cluster assembly from per-rank probes, and the cluster fingerprint.
//
// In the library each rank probes its node, serialises it with serializeRankProbe(), the blobs
// are all-gathered over the communicator, and every rank calls assembleCluster() on the same
// list: ranks of one host (same host id) must report the same hardware, and become one node.
// The fingerprint lets plans be cached and ranks check that they agree.
#pragma once

#include <string>
#include <vector>

#include "topology/model.h"

namespace nccl_moe::topo {

inline constexpr const char* kRankProbeSchemaName = "nccl-moe-rank-probe";
inline constexpr int kRankProbeSchemaVersion = 1;

struct RankProbe {
  int rank = 0;
  std::string gpuBusId;  // the GPU this rank drives; "" when none
  Node node;
};

std::string serializeRankProbe(const RankProbe& probe);
RankProbe parseRankProbe(const std::string& blob, const std::string& source);

struct RankPlacement {
  int node = -1;  // index into Cluster::nodes
  int gpu = -1;   // index into that node's gpus; -1 when the rank has no GPU
};

struct AssembledCluster {
  Cluster cluster;
  std::vector<RankPlacement> ranks;  // by rank
  std::string fingerprint;
};

// blobs[i] must come from rank i. Nodes are ordered by their lowest rank. Throws topo::Error when
// a blob is malformed, ranks of one host disagree, or two ranks drive the same GPU.
AssembledCluster assembleCluster(const std::vector<std::string>& blobs);

// 16 hex digits over what plans depend on: NVLink domains (by position, not name), GPUs (model,
// SMs, memory, NUMA, PCIe, NVLink, rail), NICs (kind, rate, NUMA, PCIe), and the link and path
// matrices. Host names and ids, bus ids, CPU lists and NIC names do not count, so identical
// machines share a fingerprint and a cached plan.
std::string fingerprint(const Cluster& cluster);

}  // namespace nccl_moe::topo
