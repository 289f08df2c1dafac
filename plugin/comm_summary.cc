#include "comm_summary.h"

#include <algorithm>

#include "misc/status.h"

namespace nccl_moe {

namespace {

// NVLink domains: what NCCL reported (v5+), else one per node.
int domainsOf(const CommRecord& record) {
  if (record.nvlDomains > 0) return record.nvlDomains;
  return static_cast<int>(std::max<size_t>(1, record.nodes));
}

std::string ranksPerDomainText(const CommRecord& record, int domains) {
  if (record.minRanksPerDomain > 0 && record.minRanksPerDomain != record.maxRanksPerDomain) {
    return format("%d-%d", record.minRanksPerDomain, record.maxRanksPerDomain);
  }
  if (record.maxRanksPerDomain > 0) return std::to_string(record.maxRanksPerDomain);
  return std::to_string(record.ranks / static_cast<size_t>(domains));
}

}  // namespace

std::string describeMoePlan(const CommRecord& record) {
  const int domains = domainsOf(record);
  if (domains <= 1) return "MoE plan: one NVLink domain, dispatch/combine over NVLink only";
  // With uniform routing a row's destination rank lies outside its own domain (D-1)/D of the time.
  const double leaving = 100.0 * (domains - 1) / domains;
  return format("MoE plan: HybridEP, NVLink phase inside each domain + network phase once per "
                "destination domain (%.1f%% of uniformly routed rows leave their domain)",
                leaving);
}

std::string describeComm(const CommRecord& record, const ChannelCap& cap, const std::string& chain,
                         int abiVersion) {
  const int domains = domainsOf(record);
  const std::string id = record.hasNcclId
                               ? format("%016llx", static_cast<unsigned long long>(record.ncclCommId))
                               : format("#%llu", static_cast<unsigned long long>(record.key));
  std::string text = format("nccl-moe tuner (v%d) comm %s: %zu ranks, %zu nodes, %d NVLink "
                            "domain%s of %s ranks; ",
                            abiVersion, id.c_str(), record.ranks, record.nodes, domains, domains == 1 ? "" : "s",
                            ranksPerDomainText(record, domains).c_str());
  text += describeMoePlan(record);
  text += cap.channels > 0 ? format("; NCCL collectives capped at %d channels (%s)", cap.channels,
                                    cap.reason.c_str())
                           : "; NCCL channels left to NCCL: " + cap.reason;
  text += "; chained tuner: " + (chain.empty() ? std::string("none") : chain);
  return text;
}

}  // namespace nccl_moe
