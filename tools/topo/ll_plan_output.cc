#include "ll_plan_output.h"

#include <cstdio>
#include <sstream>

namespace nccl_moe::topo::cli {

namespace {

std::string fixedText(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

std::string mib(int64_t bytes) { return fixedText(static_cast<double>(bytes) / 1048576.0, 1) + " MiB"; }

}  // namespace

Json lowLatencyPlanToJson(const LowLatencyShape& shape, int topk) {
  const LowLatencyBufferBytes buffers = lowLatencyBufferBytes(shape);
  const LowLatencyNetworkModel m = lowLatencyUniformNetworkModel(shape, shape.maxTokens, topk);
  Json j;
  j["max_tokens"] = shape.maxTokens;
  j["fp8_dispatch"] = shape.fp8;
  j["domains"] = shape.domains();
  j["ranks_per_domain"] = shape.domainSize();
  j["buffer_bytes_per_rank"] = buffers.total;
  j["network_rows_per_rank"] = {{"per_token_expert", m.rowsPerExpert},
                                {"per_token_rank", m.rowsPerRank},
                                {"per_token_domain", m.rowsPerNode}};
  j["dedup_factor"] = m.dedupFactor;
  j["dispatch_payload_bytes"] = m.dispatchBytesPerNode;
  j["combine_payload_bytes"] = m.combineBytesPerNode;
  j["dispatch_wire_bytes"] = m.fixedWireDispatchBytes;
  j["combine_wire_bytes"] = m.fixedWireCombineBytes;
  return j;
}

std::string lowLatencyPlanToText(const LowLatencyShape& shape, int topk) {
  const LowLatencyBufferBytes buffers = lowLatencyBufferBytes(shape);
  const LowLatencyNetworkModel m = lowLatencyUniformNetworkModel(shape, shape.maxTokens, topk);
  std::ostringstream out;
  out << "\nLow-latency mode (lowLatencyMaxTokens " << shape.maxTokens << ", " << (shape.fp8 ? "FP8" : "BF16")
      << " dispatch, " << (shape.domains() == 1 ? "one NVLink domain" : "two hops") << "):\n";
  out << "  LL buffers per rank: " << mib(buffers.total) << " (two parities)\n";
  if (shape.domains() == 1) {
    out << "  no network phase: every row moves over the domain's links\n";
    return out.str();
  }
  out << "  network rows per rank at T = " << shape.maxTokens << " (uniform top-" << topk << "): "
      << fixedText(m.rowsPerNode, 1) << " one per (token, domain) [this mode], " << fixedText(m.rowsPerRank, 1)
      << " per (token, rank), " << fixedText(m.rowsPerExpert, 1) << " per (token, expert): "
      << fixedText(m.dedupFactor, 2) << "x fewer than per expert\n";
  out << "  network payload per rank: dispatch " << fixedText(m.dispatchBytesPerNode / 1e6, 2) << " MB, combine "
      << fixedText(m.combineBytesPerNode / 1e6, 2) << " MB; on the wire (whole fixed slots): dispatch "
      << fixedText(static_cast<double>(m.fixedWireDispatchBytes) / 1e6, 2) << " MB, combine "
      << fixedText(static_cast<double>(m.fixedWireCombineBytes) / 1e6, 2) << " MB\n";
  return out.str();
}

}  // namespace nccl_moe::topo::cli
