#include "core/cluster_view.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "misc/env.h"
#include "misc/log.h"
#include "plan/plan_choice.h"
#include "topology/assembly.h"
#include "topology/model.h"
#include "topology/probe.h"
#include "transport/peer_buffer.h"

namespace nccl_moe {

namespace {

// This rank's serialised probe, or "" when probing failed (the others still take part).
std::string localProbeBlob(int rank) {
  try {
    topo::RankProbe probe;
    probe.rank = rank;
    probe.node = topo::probeLocalNode().node;
    int device = 0;
    char busId[32] = {};
    if (cudaGetDevice(&device) == cudaSuccess && cudaDeviceGetPCIBusId(busId, sizeof(busId), device) == cudaSuccess)
      probe.gpuBusId = busId;
    return topo::serializeRankProbe(probe);
  } catch (const std::exception& e) {
    logWarn("rank %d: topology probe failed: %s", rank, e.what());
    return "";
  }
}

}  // namespace

Status gatherClusterView(ncclComm_t comm, int rank, int ranks, int timeoutMs, ClusterView* view) {
  *view = ClusterView{};
  if (readParam(params::kTopology) == 0) return Status::ok();
  const std::string blob = localProbeBlob(rank);
  // Sizes first, then every blob padded to the largest.
  const uint64_t size = blob.size();
  std::vector<uint8_t> sizes;
  if (Status s = allGatherBytes(comm, ranks, &size, sizeof(size), &sizes, timeoutMs); !s.isOk()) return s;
  uint64_t largest = 0;
  std::vector<uint64_t> each(ranks);
  for (int r = 0; r < ranks; ++r) {
    std::memcpy(&each[r], sizes.data() + r * sizeof(uint64_t), sizeof(uint64_t));
    largest = std::max(largest, each[r]);
  }
  std::vector<uint8_t> padded(largest, 0), all;
  std::memcpy(padded.data(), blob.data(), blob.size());
  if (largest == 0) return Status::ok();
  if (Status s = allGatherBytes(comm, ranks, padded.data(), largest, &all, timeoutMs); !s.isOk()) return s;
  std::vector<std::string> blobs(ranks);
  for (int r = 0; r < ranks; ++r) {
    if (each[r] == 0) {
      logWarn("rank %d: rank %d has no topology probe; cluster view skipped", rank, r);
      return Status::ok();
    }
    blobs[r].assign(reinterpret_cast<const char*>(all.data() + r * largest), each[r]);
  }
  try {
    const topo::AssembledCluster assembled = topo::assembleCluster(blobs);
    view->fingerprint = assembled.fingerprint;
    view->nodes = static_cast<int>(assembled.cluster.nodes.size());
    view->nvlinkDomains = static_cast<int>(topo::nvlinkDomains(assembled.cluster).size());
    const plan::TopologyFacts facts = plan::topologyFacts(assembled.cluster, assembled.ranks);
    view->ranksPerDomain = facts.ranksPerDomain;
    view->peerAccess = facts.peerAccess;
    view->nvlinkGBps = facts.nvlinkGBps;
    view->networkGBps = facts.networkGBps;
    const std::string perDomain =
        view->ranksPerDomain > 0 ? format("%d ranks each", view->ranksPerDomain) : "unequal or interleaved";
    view->summary = format("%d ranks on %d nodes, %d GPUs, %d NVLink domains (%s), peer access %s, fingerprint %s",
                           ranks, view->nodes, assembled.cluster.gpuCount(), view->nvlinkDomains, perDomain.c_str(),
                           view->peerAccess ? "yes" : "no", view->fingerprint.c_str());
  } catch (const std::exception& e) {
    logWarn("rank %d: cluster assembly failed: %s", rank, e.what());
  }
  return Status::ok();
}

}  // namespace nccl_moe
