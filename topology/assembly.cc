#include "topology/assembly.h"

#include <limits>
#include <map>

#include "topology/error.h"
#include "topology/hash.h"
#include "topology/json_io.h"

namespace nccl_moe::topo {

namespace {

Json pcieShape(const PcieLink& link) {
  return Json::array({link.gen, link.width, pcieBandwidthGBps(link)});
}

Json nodeShape(const Node& node, int domain) {
  Json gpus = Json::array();
  for (const auto& gpu : node.gpus) {
    gpus.push_back(Json::array({gpu.name, gpu.smVersion(), gpu.smCount, gpu.memoryBytes, gpu.numa,
                                pcieShape(gpu.pcie), gpu.nvlinks, gpu.nvswitchLinks,
                                gpu.nvlinkGBpsPerLink, gpu.rail}));
  }
  Json nics = Json::array();
  for (const auto& nic : node.nics) {
    nics.push_back(Json::array({toString(nic.kind), nic.gbitPerSec, nic.numa, nic.port,
                                pcieShape(nic.pcie)}));
  }
  Json full = toJson(node);
  return Json{{"domain", domain},
              {"gpus", gpus},
              {"nics", nics},
              {"nvlinks", full["nvlinks"]},
              {"gpu_paths", full["gpu_paths"]},
              {"gpu_nic_paths", full["gpu_nic_paths"]}};
}

}  // namespace

std::string serializeRankProbe(const RankProbe& probe) {
  Json json{{"schema", kRankProbeSchemaName},
            {"version", kRankProbeSchemaVersion},
            {"rank", probe.rank},
            {"gpu_bus_id", probe.gpuBusId},
            {"node", toJson(probe.node)}};
  return dumpJson(json);
}

RankProbe parseRankProbe(const std::string& blob, const std::string& source) {
  Json json = parseJsonText(blob, source);
  if (!json.is_object()) fail(source, ": expected a JSON object");
  auto field = [&](const char* key) -> const Json& {
    if (!json.contains(key)) fail(source, ": ", key, ": is required");
    return json.at(key);
  };
  if (field("schema") != kRankProbeSchemaName) {
    fail(source, ": schema: expected \"", kRankProbeSchemaName, "\"");
  }
  if (field("version") != kRankProbeSchemaVersion) {
    fail(source, ": version: ", describeJson(field("version")), " is not supported (this build reads ",
         kRankProbeSchemaVersion, ")");
  }
  for (const auto& item : json.items()) {
    const std::string& key = item.key();
    if (key != "schema" && key != "version" && key != "rank" && key != "gpu_bus_id" && key != "node") {
      fail(source, ": ", excerpt(key), ": unknown key");
    }
  }
  RankProbe probe;
  if (!integerInRange(field("rank"), 0, std::numeric_limits<int>::max())) {
    fail(source, ": rank: expected a non-negative integer, got ", describeJson(field("rank")));
  }
  probe.rank = field("rank").get<int>();
  if (!field("gpu_bus_id").is_string()) fail(source, ": gpu_bus_id: expected a string");
  probe.gpuBusId = field("gpu_bus_id").get<std::string>();
  probe.node = nodeFromJson(field("node"), source, "node");
  return probe;
}

AssembledCluster assembleCluster(const std::vector<std::string>& blobs) {
  AssembledCluster result;
  std::map<std::string, int> nodeOfHost;
  std::map<std::string, int> firstRankOfHost;
  std::map<std::pair<int, int>, int> rankOfGpu;
  for (size_t r = 0; r < blobs.size(); ++r) {
    std::string source = "rank " + std::to_string(r);
    RankProbe probe = parseRankProbe(blobs[r], source);
    if (probe.rank != static_cast<int>(r)) {
      fail(source, ": the probe says rank ", probe.rank, "; blobs must be in rank order");
    }
    const std::string& host = probe.node.hostId;
    if (host.empty()) fail(source, ": node.host_id is empty; cannot tell which ranks share a node");
    auto [it, inserted] = nodeOfHost.emplace(host, static_cast<int>(result.cluster.nodes.size()));
    if (inserted) {
      firstRankOfHost[host] = probe.rank;
      result.cluster.nodes.push_back(probe.node);
    } else if (toJson(result.cluster.nodes[it->second]) != toJson(probe.node)) {
      fail(source, ": host '", excerpt(host), "' was probed differently by rank ", firstRankOfHost[host],
           "; ranks of one host must see the same hardware");
    }
    RankPlacement place{it->second, -1};
    const Node& node = result.cluster.nodes[place.node];
    if (!probe.gpuBusId.empty()) {
      std::string busId = normalizePciBusId(probe.gpuBusId);
      for (size_t g = 0; g < node.gpus.size(); ++g) {
        if (node.gpus[g].busId == busId) place.gpu = static_cast<int>(g);
      }
      if (place.gpu < 0) {
        fail(source, ": GPU ", excerpt(busId), " is not among host '", excerpt(host), "' GPUs");
      }
      auto [used, fresh] = rankOfGpu.emplace(std::make_pair(place.node, place.gpu), probe.rank);
      if (!fresh) {
        fail(source, ": rank ", used->second, " already drives GPU ", busId, " on host '", excerpt(host),
             "'");
      }
    }
    result.ranks.push_back(place);
  }
  result.fingerprint = fingerprint(result.cluster);
  return result;
}

std::string fingerprint(const Cluster& cluster) {
  std::vector<int> domainOfNode(cluster.nodes.size(), 0);
  std::vector<NvlinkDomain> domains = nvlinkDomains(cluster);
  for (size_t d = 0; d < domains.size(); ++d) {
    for (int n : domains[d].nodes) domainOfNode[n] = static_cast<int>(d);
  }
  Json shape{{"fingerprint_version", 1}, {"nodes", Json::array()}};
  for (size_t n = 0; n < cluster.nodes.size(); ++n) {
    shape["nodes"].push_back(nodeShape(cluster.nodes[n], domainOfNode[n]));
  }
  return hex64(fnv1a64(dumpJson(shape)));
}

}  // namespace nccl_moe::topo
