// Cluster JSON (nccl-moe-topo FILE) and the per-rank probe blob that ranks all-gather when they
// assemble the cluster: both read bytes someone else wrote. Rejections must be topo::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_cluster.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nccl_moe;
  const std::string text(reinterpret_cast<const char*>(data), size);

  topo::Cluster cluster;
  if (fuzz::acceptsOrRejects("parseClusterJson", [&] { cluster = topo::parseClusterJson(text, "fuzz.json"); }))
    fuzz::exerciseCluster(cluster);

  // What a rank runs on the all-gathered probes (parseRankProbe, then the host checks).
  fuzz::acceptsOrRejects("assembleCluster", [&] { (void)topo::assembleCluster({text}); });
  return 0;
}
