#include "plan_output.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "topology/assembly.h"
#include "topology/text_view.h"

namespace nccl_moe::topo::cli {

namespace {

const char* routingName(plan::RoutingKind kind) {
  switch (kind) {
    case plan::RoutingKind::kUniform: return "uniform";
    case plan::RoutingKind::kSkewed: return "skewed";
    case plan::RoutingKind::kTrace: return "trace";
  }
  return "?";
}

Json linkJson(const plan::LinkLoad& load) {
  return Json{{"bytes_sent", load.bytesSent},
              {"bytes_received", load.bytesReceived},
              {"bytes", load.bytes()},
              {"gbytes_per_s", load.gbytesPerSec},
              {"seconds", load.seconds}};
}

Json linkPredictionJson(const plan::LinkPrediction& p) {
  return Json{{"network_bytes", p.networkBytes},
              {"nvlink_bytes", p.nvlinkBytes},
              {"network_seconds", p.networkSeconds},
              {"nvlink_seconds", p.nvlinkSeconds}};
}

Json chosenJson(const plan::ChosenPlan& p) {
  return Json{{"kind", plan::toString(p.kind)},
              {"ranks_per_domain", p.ranksPerDomain},
              {"domains", p.domains},
              {"chunk_rows", p.chunkRows},
              {"chunks_in_flight", p.chunksInFlight},
              {"chunks_per_call", p.chunksPerCall.chunks},
              {"rows_per_call_chunk", p.chunksPerCall.rowsPerChunk},
              {"sms_for_network_staging", p.smsForNetworkStaging},
              {"sms_for_forwarding", p.smsForForwarding},
              {"dispatch", linkPredictionJson(p.dispatch)},
              {"combine", linkPredictionJson(p.combine)},
              {"nvlink_gbytes_per_s", p.nvlinkGBps},
              {"network_gbytes_per_s", p.networkGBps},
              {"dispatch_row_bytes", p.dispatchRowBytes},
              {"combine_row_bytes", p.combineRowBytes},
              {"network_staging_bytes", p.networkStagingBytes},
              {"reason", p.reason},
              {"description", plan::describePlan(p)}};
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

std::string megabytes(double bytes) { return fixed(bytes / 1e6, 2); }
std::string micros(double seconds) { return fixed(seconds * 1e6, 1); }

// Left-aligned columns.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line = "  ";
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - row[c].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace

Json planToJson(const PlanContext& c) {
  const plan::CostReport& r = c.report;
  const plan::RoutingStats& t = r.perToken;
  Json phases = Json::array();
  for (const auto& phase : r.phases) {
    phases.push_back(Json{{"phase", phase.phase},
                          {"strategy", phase.strategy},
                          {"row_bytes", phase.rowBytes},
                          {"intra", linkJson(phase.intra)},
                          {"network", linkJson(phase.network)},
                          {"seconds", phase.seconds},
                          {"bottleneck", phase.bottleneck}});
  }
  double intraBw = r.phases.empty() ? 0 : r.phases.front().intra.gbytesPerSec;
  double networkBw = r.phases.empty() ? 0 : r.phases.front().network.gbytesPerSec;
  Json routing{{"model", routingName(c.routing.kind)}, {"description", r.routing}};
  if (c.routing.kind == plan::RoutingKind::kSkewed) routing["skew"] = c.routing.skew;
  if (c.routing.kind != plan::RoutingKind::kTrace) routing["seed"] = c.routing.seed;
  return Json{
      {"cluster",
       {{"name", c.cluster.name},
        {"fingerprint", fingerprint(c.cluster)},
        {"nodes", c.cluster.nodes.size()},
        {"gpus", r.ranks},
        {"nvlink_domains", r.domains},
        {"largest_domain_gpus", r.largestDomainGpus},
        {"intra_link", r.intraLinkName},
        {"intra_gbytes_per_s", intraBw},
        {"network_gbytes_per_s", networkBw}}},
      {"shape",
       {{"experts", c.shape.experts},
        {"topk", c.shape.topk},
        {"tokens_per_rank", c.shape.tokensPerRank},
        {"hidden", c.shape.hidden},
        {"dispatch_dtype", c.dispatchType},
        {"combine_dtype", c.combineType},
        {"dispatch_row_bytes", plan::dispatchRowBytes(c.shape)},
        {"combine_row_bytes", plan::combineRowBytes(c.shape)}}},
      {"routing", routing},
      {"per_token",
       {{"tokens", t.tokens},
        {"expert_pairs", t.expertPairs},
        {"remote_expert_pairs", t.remoteExpertPairs},
        {"remote_expert_fraction", t.expertPairs > 0 ? t.remoteExpertPairs / t.expertPairs : 0},
        {"ranks", t.ranks},
        {"local_ranks", t.localRanks},
        {"remote_ranks", t.remoteRanks},
        {"remote_domains", t.remoteDomains},
        {"forwarded_rows", t.forwardedRows}}},
      {"phases", phases},
      {"bottleneck", r.bottleneck},
      {"chosen_plan", chosenJson(c.chosen)}};
}

std::string planToText(const PlanContext& c) {
  const plan::CostReport& r = c.report;
  const plan::RoutingStats& t = r.perToken;
  std::ostringstream out;
  double intraBw = r.phases.empty() ? 0 : r.phases.front().intra.gbytesPerSec;
  double networkBw = r.phases.empty() ? 0 : r.phases.front().network.gbytesPerSec;
  out << "Cluster: " << c.cluster.name << " (" << r.ranks << " GPUs, " << r.domains << " NVLink domain"
      << (r.domains == 1 ? "" : "s") << ", up to " << r.largestDomainGpus << " GPUs each; fingerprint "
      << fingerprint(c.cluster) << ")\n";
  out << "  per GPU: " << r.intraLinkName << " " << formatGBps(intraBw) << ", network " << formatGBps(networkBw)
      << " (slowest GPU)\n";
  out << "Shape: " << c.shape.experts << " experts, top-" << c.shape.topk << ", " << c.shape.tokensPerRank
      << " tokens/rank, hidden " << c.shape.hidden << "; dispatch " << c.dispatchType << " ("
      << plan::dispatchRowBytes(c.shape) << " B/row), combine " << c.combineType << " ("
      << plan::combineRowBytes(c.shape) << " B/row)\n";
  out << "Routing: " << r.routing << "\n";
  out << "Per token: " << fixed(t.expertPairs, 0) << " (token, expert) pairs, " << fixed(t.remoteExpertPairs, 3)
      << " (" << fixed(t.expertPairs > 0 ? 100 * t.remoteExpertPairs / t.expertPairs : 0, 1)
      << "%) in other domains; " << fixed(t.ranks, 3) << " distinct ranks (" << fixed(t.remoteRanks, 3)
      << " remote, " << fixed(t.localRanks, 3) << " local others); " << fixed(t.remoteDomains, 3)
      << " remote domains; " << fixed(t.forwardedRows, 3) << " rows forwarded in domain\n\n";
  const std::string& link = r.intraLinkName;
  std::vector<std::vector<std::string>> rows{{"phase", "strategy", link + " MB/GPU", link + " us",
                                              "network MB/GPU", "network us", "time us", "bottleneck"}};
  for (const auto& phase : r.phases) {
    rows.push_back({phase.phase, phase.strategy, megabytes(phase.intra.bytes()), micros(phase.intra.seconds),
                    megabytes(phase.network.bytes()), micros(phase.network.seconds), micros(phase.seconds),
                    phase.bottleneck});
  }
  out << table(rows);
  out << "\nBottleneck (node-dedup dispatch + combine): " << r.bottleneck << "\n";
  out << "Speed of light: MB = 1e6 bytes per GPU in its busier direction; links overlap (time = the slower\n"
         "link); no latency, kernel or memory cost.\n";
  const plan::ChosenPlan& p = c.chosen;
  auto predicted = [](const plan::LinkPrediction& l) {
    return megabytes(l.networkBytes) + " MB network + " + megabytes(l.nvlinkBytes) + " MB NVLink (" +
           micros(std::max(l.networkSeconds, l.nvlinkSeconds)) + " us)";
  };
  out << "\nChosen plan: " << plan::describePlan(p) << "\n";
  out << "  per rank, uniform routing: dispatch " << predicted(p.dispatch) << ", combine " << predicted(p.combine)
      << "\n";
  return out.str();
}

}  // namespace nccl_moe::topo::cli
