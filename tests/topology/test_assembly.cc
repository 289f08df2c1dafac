// Cluster assembly from per-rank probe blobs, and the fingerprint.
#include <gtest/gtest.h>

#include "error_of.h"

#include "topology/assembly.h"
#include "topology/error.h"
#include "topology/json_io.h"
#include "topology/presets.h"

namespace nccl_moe::topo {
namespace {

using topo::test::errorOf;

// Ranks 0..R-1 of `cluster`, node by node, each driving one GPU.
std::vector<std::string> blobsOf(const Cluster& cluster) {
  std::vector<std::string> blobs;
  for (const auto& node : cluster.nodes) {
    for (const auto& gpu : node.gpus) {
      RankProbe probe;
      probe.rank = static_cast<int>(blobs.size());
      probe.gpuBusId = gpu.busId;
      probe.node = node;
      blobs.push_back(serializeRankProbe(probe));
    }
  }
  return blobs;
}

TEST(TopoFingerprint, StableAndStructural) {
  Cluster a = makePreset("dgx-h100", 2);
  Cluster b = makePreset("dgx-h100", 2);
  EXPECT_EQ(fingerprint(a), fingerprint(b));
  EXPECT_EQ(fingerprint(a).size(), 16u);
  // Names, ids, bus ids and CPU lists do not change what a plan depends on.
  b.name = "other";
  b.nodes[0].hostname = "elsewhere";
  b.nodes[1].hostId = "id-7";
  b.nodes[0].gpus[3].busId = "0000:99:00.0";
  b.nodes[1].nics[2].name = "mlx5_42";
  b.nodes[0].numa[0].cpus = "0-3";
  EXPECT_EQ(fingerprint(a), fingerprint(b));
  // Hardware that matters does.
  Cluster slowNic = a;
  slowNic.nodes[1].nics[5].gbitPerSec = 200;
  EXPECT_NE(fingerprint(a), fingerprint(slowNic));
  Cluster oneDomain = a;
  oneDomain.nodes[0].nvlinkDomain = oneDomain.nodes[1].nvlinkDomain = "fabric-x";
  EXPECT_NE(fingerprint(a), fingerprint(oneDomain));
  // Domain names count by position only.
  Cluster renamed = oneDomain;
  renamed.nodes[0].nvlinkDomain = renamed.nodes[1].nvlinkDomain = "fabric-y";
  EXPECT_EQ(fingerprint(oneDomain), fingerprint(renamed));
  EXPECT_NE(fingerprint(a), fingerprint(makePreset("dgx-h100", 3)));
  EXPECT_NE(fingerprint(a), fingerprint(makePreset("hgx-h200", 2)));
}

TEST(TopoFingerprint, KnownValueDoesNotDrift) {
  // Plans cached under a fingerprint must stay findable: if this changes, the fingerprint format
  // changed (bump fingerprint_version in assembly.cc and say so).
  Cluster cluster = parseClusterJson(R"({"schema": "nccl-moe-cluster", "version": 1, "nodes": [
      {"host_id": "a", "gpus": [{"name": "G", "compute_capability": "9.0", "sm_count": 132,
        "nvlink": {"links": 18, "switch_links": 18, "gbytes_per_s_per_link": 25}}],
       "nics": [{"name": "n0", "kind": "infiniband", "gbit_per_s": 400}]}]})",
                                     "pinned.json");
  EXPECT_EQ(fingerprint(cluster), "02fe154b496584e3");
}

TEST(TopoAssembly, RanksOfAHostBecomeOneNode) {
  Cluster cluster = makePreset("dgx-h100", 2);
  AssembledCluster assembled = assembleCluster(blobsOf(cluster));
  ASSERT_EQ(assembled.cluster.nodes.size(), 2u);
  EXPECT_EQ(assembled.cluster.nodes, cluster.nodes);
  ASSERT_EQ(assembled.ranks.size(), 16u);
  EXPECT_EQ(assembled.ranks[9].node, 1);
  EXPECT_EQ(assembled.ranks[9].gpu, 1);
  EXPECT_EQ(assembled.fingerprint, fingerprint(cluster));
}

TEST(TopoAssembly, InterleavedRanksAndRanksWithoutGpu) {
  Cluster cluster = makePreset("dgx-h100", 2);
  std::vector<std::string> blobs;
  for (int r = 0; r < 4; ++r) {
    RankProbe probe;
    probe.rank = r;
    probe.node = cluster.nodes[r % 2];
    probe.gpuBusId = r == 3 ? "" : cluster.nodes[r % 2].gpus[r / 2].busId;
    blobs.push_back(serializeRankProbe(probe));
  }
  AssembledCluster assembled = assembleCluster(blobs);
  EXPECT_EQ(assembled.cluster.nodes.size(), 2u);
  EXPECT_EQ(assembled.ranks[1].node, 1);
  EXPECT_EQ(assembled.ranks[2].gpu, 1);
  EXPECT_EQ(assembled.ranks[3].gpu, -1);
}

TEST(TopoAssembly, DisagreementsAreErrors) {
  Cluster cluster = makePreset("dgx-h100", 1);
  std::vector<std::string> blobs = blobsOf(cluster);

  RankProbe odd = parseRankProbe(blobs[5], "rank 5");
  odd.node.nics[0].gbitPerSec = 200;
  std::vector<std::string> disagree = blobs;
  disagree[5] = serializeRankProbe(odd);
  EXPECT_EQ(errorOf([&] { assembleCluster(disagree); }),
            "rank 5: host 'preset:dgx-h100-0' was probed differently by rank 0; ranks of one host must see "
            "the same hardware");

  std::vector<std::string> twice = blobs;
  RankProbe copy = parseRankProbe(blobs[0], "rank 0");
  copy.rank = 1;
  twice[1] = serializeRankProbe(copy);
  EXPECT_EQ(errorOf([&] { assembleCluster(twice); }),
            "rank 1: rank 0 already drives GPU 0000:1b:00.0 on host 'preset:dgx-h100-0'");

  std::vector<std::string> swapped = blobs;
  std::swap(swapped[0], swapped[1]);
  EXPECT_EQ(errorOf([&] { assembleCluster(swapped); }), "rank 0: the probe says rank 1; blobs must be in rank order");

  RankProbe stranger = parseRankProbe(blobs[2], "rank 2");
  stranger.gpuBusId = "0000:aa:00.0";
  std::vector<std::string> unknownGpu = blobs;
  unknownGpu[2] = serializeRankProbe(stranger);
  EXPECT_EQ(errorOf([&] { assembleCluster(unknownGpu); }),
            "rank 2: GPU 0000:aa:00.0 is not among host 'preset:dgx-h100-0' GPUs");

  EXPECT_EQ(errorOf([] { parseRankProbe("{\"schema\":\"nccl-moe-rank-probe\",\"version\":9}", "rank 4"); }),
            "rank 4: version: 9 is not supported (this build reads 1)");
  EXPECT_NE(errorOf([] { parseRankProbe("not json", "rank 4"); }).find("rank 4:1:2: invalid JSON"),
            std::string::npos);
}

}  // namespace
}  // namespace nccl_moe::topo
