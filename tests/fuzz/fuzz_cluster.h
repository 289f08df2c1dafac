// What the tools do with a cluster file that parsed, so that bugs past the parser count too.
#pragma once

#include <string>

#include "fuzz_common.h"
#include "plan/cost_model.h"
#include "topology/assembly.h"
#include "topology/json_io.h"
#include "topology/nccl_xml.h"
#include "topology/text_view.h"
#include "topology/validate.h"

namespace nccl_moe::fuzz {

// What `nccl-moe-topo validate/show/plan FILE` does with a file that parsed: check it, and when
// valid render it, write it in both formats (JSON must read back to the same text) and cost it.
inline void exerciseCluster(const topo::Cluster& cluster) {
  bool valid = false;
  mustSucceed("findProblems", [&] { valid = topo::findProblems(cluster).empty(); });
  if (!valid) return;
  mustSucceed("valid cluster output", [&] {
    (void)topo::renderCluster(cluster);
    (void)topo::fingerprint(cluster);
    (void)topo::toNcclXmlText(cluster);
    const std::string json = topo::toJsonText(cluster);
    if (topo::toJsonText(topo::parseClusterJson(json, "roundtrip.json")) != json)
      bug("cluster JSON does not read back to the same text:\n" + json);
  });
  const int gpus = cluster.gpuCount();
  if (gpus == 0 || gpus > 4096) return;
  plan::CostShape shape;
  shape.experts = gpus * 4;
  shape.topk = 4;
  shape.tokensPerRank = 4096;
  shape.hidden = 7168;
  acceptsOrRejects("estimateCost", [&] { (void)plan::estimateCost(cluster, shape, plan::RoutingModel{}); });
}

}  // namespace nccl_moe::fuzz
