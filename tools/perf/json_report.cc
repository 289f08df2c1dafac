#include "tools/perf/json_report.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace nccl_moe::perf {
namespace {

using Json = nlohmann::ordered_json;

template <class T>
Json orNull(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Json rowJson(const RunDescription& run, const Measurement& m) {
  const Bandwidths b = bandwidthsOf(run, m);
  const double groupRows = m.rowsPerRank * run.ranks;
  Json row;
  row["tokens"] = m.tokens;
  row["rows_per_rank"] = m.rowsPerRank;
  row["dispatch_us"] = m.dispatchUs;
  row["combine_us"] = m.combineUs;
  row["copy_us"] = m.copyUs;
  row["a2av_dispatch_us"] = orNull(m.a2avDispatchUs);
  row["a2av_combine_us"] = orNull(m.a2avCombineUs);
  row["quantize_us"] = orNull(m.quantizeUs);
  row["layout_us"] = m.layoutUs;
  row["layout_dispatch_us"] = m.layoutDispatchUs;
  row["host_us"] = m.hostUs;
  row["host_mean_us"] = m.hostMeanUs;
  // All ranks' bytes (the earlier writer's meaning).
  row["dispatch_bytes"] = groupRows * static_cast<double>(run.dispatchRowBytes);
  row["combine_bytes"] = groupRows * static_cast<double>(run.combineRowBytes);
  // The table's columns: per rank, as nccl-tests.
  row["size_bytes"] = dispatchSizeBytes(run, m);
  row["count"] = m.rowsPerRank;
  row["type"] = run.dispatchType();
  row["remote_rows_per_rank"] = m.remoteRowsPerRank;
  row["dispatch_algbw_gbs"] = b.dispatchAlgbw;
  row["dispatch_busbw_gbs"] = b.dispatchBusbw;
  row["combine_algbw_gbs"] = b.combineAlgbw;
  row["combine_busbw_gbs"] = b.combineBusbw;
  row["dispatch_copy_pct"] = b.dispatchCopyPercent;
  row["combine_copy_pct"] = b.combineCopyPercent;
  row["dispatch_wrong"] = orNull(m.dispatchWrong);
  row["combine_wrong"] = orNull(m.combineWrong);
  if (m.twoHop) {
    row["nvlink_payload_bytes"] = m.traffic.nvlinkPayload;
    row["network_payload_bytes"] = m.traffic.networkPayload;
    row["network_payload_bytes_max_rank"] = m.traffic.networkPayloadMax;
    row["wire_bytes_fixed"] = m.traffic.wireFixed;
    row["wire_bytes_counted_rows"] = m.traffic.wireCountedRows;
    row["wire_over_payload"] =
        wireOverPayload(static_cast<double>(m.traffic.wireFixed), m.traffic.networkPayload);
  }
  Json phases = Json::object();
  for (int p = 0; p < ncclMoeNumPhases; ++p) {
    if (m.phaseStartUs[p] < 0) continue;
    phases[ncclMoePhaseName(static_cast<ncclMoePhase_t>(p))] = {m.phaseStartUs[p], m.phaseEndUs[p]};
  }
  row["phases_us"] = phases;
  return row;
}

}  // namespace

std::string perfJsonText(const RunDescription& run, const std::vector<Measurement>& rows) {
  Json doc;
  doc["tool"] = "nccl-moe-perf";
  writeRunBasics(run, &doc);
  doc["fp8"] = run.fp8;
  doc["dtype"] = run.dtype;
  doc["layout"] = run.expertMajor ? "expert-major" : "per-rank";
  doc["zero_copy"] = run.zeroCopy;
  doc["buffer_bytes_per_rank"] = run.info.bufferBytes;
  doc["empty_kernel_us"] = orNull(run.emptyKernelUs);
  if (run.twoHop()) {
    doc["domains"] = run.info.domains;
    doc["ranks_per_domain"] = run.info.ranksPerDomain;
    doc["network_transfers"] = "fitted to the counted rows (blocking-mode layouts)";
    doc["network_chunks"] = run.info.netChunks;
    doc["network_chunk_rows"] = run.info.netChunkRows;
    doc["traffic_bytes_per_rank"] = "group total / ranks";
    doc["meta_slot_bytes"] = run.info.metaSlotBytes;
    doc["net_slot_rows"] = run.info.netSlotRows;
    doc["net_dispatch_row_bytes"] = run.info.netDispatchRowBytes;
    doc["net_combine_row_bytes"] = run.info.netCombineRowBytes;
  }
  doc["definitions"] = {
      {"size_bytes", "bytes a rank receives in dispatch: count x dispatch row bytes (mean over ranks)"},
      {"count", "rows a rank receives (mean over ranks)"},
      {"time_us", "the slowest rank's mean time per call over the timed iterations"},
      {"algbw_gbs", "size / time, 1e9 B/s; combine's size is count x its row bytes"},
      {"busbw_gbs", "bytes of the rows that cross between ranks / time = algbw x remote_rows_per_rank / count"},
      {"wrong", "elements differing bit for bit from the CPU reference over all ranks; null when not checked"},
      {"dispatch_bytes", "all ranks' received dispatch bytes (count x ranks x dispatch row bytes)"}};
  doc["avg_busbw_gbs"] = averageBusBandwidth(run, rows);
  doc["wrong_total"] = orNull(totalWrong(rows));
  Json list = Json::array();
  for (const Measurement& m : rows) list.push_back(rowJson(run, m));
  doc["rows"] = list;
  return doc.dump(1) + "\n";
}

void writeJson(tools::OutputFile& file, const std::string& text) {
  if (file) std::fwrite(text.data(), 1, text.size(), file.get());
  file.close();
}

}  // namespace nccl_moe::perf
