#include "tools/perf/ll_report.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace nccl_moe::perf {
namespace {

using Json = nlohmann::ordered_json;

double nearestRank(const std::vector<double>& sorted, double q) {
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size(), std::max<size_t>(rank, 1)) - 1];
}

double ratio(double numerator, double denominator) { return denominator > 0 ? numerator / denominator : 0.0; }

std::string ratioText(double value) { return value > 0 ? fixed(value, 2) : "-"; }

std::string timeText(double us) { return us > 0 ? fixed(us, 2) : "-"; }

Json statsJson(const LatencyStats& s) { return Json{{"p50", s.p50}, {"p99", s.p99}, {"mean", s.mean}}; }

template <class T>
Json orNull(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

}  // namespace

LatencyStats latencyStats(std::vector<double> samples) {
  LatencyStats stats;
  if (samples.empty()) return stats;
  std::sort(samples.begin(), samples.end());
  stats.p50 = nearestRank(samples, 0.50);
  stats.p99 = nearestRank(samples, 0.99);
  double sum = 0;
  for (double v : samples) sum += v;
  stats.mean = sum / static_cast<double>(samples.size());
  return stats;
}

double lowLatencySizeBytes(const LowLatencyRow& row) { return row.rowsPerRank * row.rowBytes; }

double highThroughputOverEager(const LowLatencyRow& row) { return ratio(row.highThroughput.p50, row.eager.p50); }

double graphOverCopy(const LowLatencyRow& row) { return ratio(row.graph.p50, row.copy.p50); }

std::vector<Column> lowLatencyColumns(const LowLatencyRunDescription& run) {
  std::vector<Column> columns = {
      {"", "tokens", "", 6},          {"", "op", "", 8},
      {"", "type", "", 8},            {"", "size", "(B)", 11},
      {"", "count", "(rows)", 7},     {"eager", "p50", "(us)", 8},
      {"eager", "p99", "(us)", 8},    {"graph", "p50", "(us)", 8},
      {"graph", "p99", "(us)", 8},    {"host", "call", "(us)", 7},
      {"high-throughput", "p50", "(us)", 9}, {"high-throughput", "ht/ll", "", 6},
      {"copy floor", "p50", "(us)", 8}, {"copy floor", "ll/copy", "", 7},
      {"", "#wrong", "", 7}};
  if (run.domains > 1)
    for (const char* name : {"net pay", "wire"}) columns.push_back({"per rank", name, "(MB)", 8});
  return columns;
}

std::vector<std::string> lowLatencyCells(const LowLatencyRunDescription& run, const LowLatencyRow& row) {
  std::vector<std::string> cells = {std::to_string(row.tokens),
                                    row.op,
                                    row.type,
                                    fixed(lowLatencySizeBytes(row), 0),
                                    fixed(row.rowsPerRank, 0),
                                    timeText(row.eager.p50),
                                    timeText(row.eager.p99),
                                    timeText(row.graph.p50),
                                    timeText(row.graph.p99),
                                    fixed(row.hostUs, 2),
                                    timeText(row.highThroughput.p50),
                                    ratioText(highThroughputOverEager(row)),
                                    timeText(row.copy.p50),
                                    ratioText(graphOverCopy(row)),
                                    wrongText(row.wrong)};
  if (run.domains > 1) {
    cells.push_back(row.networkPayloadBytes ? fixed(*row.networkPayloadBytes / 1e6, 2) : "-");
    cells.push_back(row.wireBytes ? fixed(*row.wireBytes / 1e6, 2) : "-");
  }
  return cells;
}

std::string lowLatencyLegend() {
  return "  tokens   tokens per rank T of every LL call (the same on every rank)\n"
         "  op       dispatch (ncclMoeLowLatencyDispatch) or combine (ncclMoeLowLatencyCombine, weighted)\n"
         "  type     the rows dispatch moves: bf16, fp8 (E4M3, fp32 scales per 128 channels) or fp8-pow2\n"
         "           (power-of-two scales); combine moves bf16 rows\n"
         "  size     count x row bytes: what the LL layout holds on a rank (2H bf16, H + 4 x ceil(H/128) fp8)\n"
         "  count    rows a rank receives: one per (token, kept slot) whose expert it holds, mean over ranks\n"
         "  eager    us per call, nearest-rank p50 and p99 of -n calls each between two CUDA events, after -w\n"
         "           warm-up calls, ranks started together; each the slowest rank's\n"
         "  graph    the same with the call captured once in a CUDA graph and the graph launched per call\n"
         "  host     us of one eager call on the host (its enqueue): median of the timed calls, slowest rank\n"
         "  high-throughput  p50 of the HT path on the same communicator and routing: ncclMoeLayoutCreate +\n"
         "           ncclMoeHandleGetCounts + ncclMoeDispatch (one host synchronisation), or ncclMoeCombine;\n"
         "           ht/ll = its p50 / the LL eager p50 (above 1: LL faster)\n"
         "  copy floor  p50 of one device-to-device copy of every rank's size bytes by one GPU (what the GPU\n"
         "           of a one-GPU virtual cluster moves); ll/copy = the LL graph p50 / that\n"
         "  #wrong   elements differing bit for bit from the contract (docs/low_latency.md), all ranks: dispatch\n"
         "           rows, FP8 scales, source info and counts; the combine's outputs; N/A with -c 0\n";
}

std::optional<int64_t> lowLatencyWrongTotal(const std::vector<LowLatencyRow>& rows) {
  std::optional<int64_t> total;
  for (const LowLatencyRow& row : rows)
    if (row.wrong) total = total.value_or(0) + *row.wrong;
  return total;
}

std::string lowLatencySummaryLines(const LowLatencyRunDescription& run, const std::vector<LowLatencyRow>& rows) {
  double host = 0;
  for (const LowLatencyRow& row : rows) host = std::max(host, row.hostUs);
  std::string text = "# Largest host time    : " + fixed(host, 2) + " us per call\n";
  text += "# Launch floor         : an empty kernel, " + fixed(run.emptyKernelHostUs, 2) + " us host, p50 " +
          fixed(run.emptyKernel.p50, 2) + " / p99 " + fixed(run.emptyKernel.p99, 2) + " us GPU (timed like the calls)\n";
  const std::optional<int64_t> wrong = lowLatencyWrongTotal(rows);
  if (!wrong)
    text += "# #wrong elements      : N/A (-c 0: not checked)\n";
  else
    text += "# #wrong elements      : " + std::to_string(*wrong) + (*wrong == 0 ? " OK" : " FAILED") + "\n";
  return text;
}

std::string lowLatencyJsonText(const LowLatencyRunDescription& run, const std::vector<LowLatencyRow>& rows) {
  Json doc;
  doc["tool"] = "nccl-moe-perf";
  doc["mode"] = "low-latency";
  writeRunBasics(run, &doc);
  doc["ll_max_tokens"] = run.maxTokens;
  doc["domains"] = run.domains;
  doc["ranks_per_domain"] = run.ranksPerDomain;
  doc["dispatch_types"] = run.dispatchTypes;
  doc["ll_buffer_bytes_per_rank"] = run.lowLatencyBufferBytes;
  doc["empty_kernel_us"] = statsJson(run.emptyKernel);
  doc["empty_kernel_host_us"] = run.emptyKernelHostUs;
  doc["definitions"] = {
      {"latency_us", "per call: nearest-rank p50 / p99 and mean of the timed calls, each between two CUDA events; "
                     "the slowest rank's"},
      {"eager", "the LL call enqueued per iteration"},
      {"graph", "the LL call captured once in a CUDA graph, the graph launched per iteration"},
      {"host_us", "host time of one eager LL call (enqueue): median of the timed calls, slowest rank"},
      {"high_throughput", "layout + counts + dispatch, or combine, of the HT path on the same routing"},
      {"copy", "one device-to-device copy of every rank's size bytes by one GPU"},
      {"empty_kernel", "an empty kernel launched on the same stream and timed like the calls: the launch floor"},
      {"size_bytes", "rows_per_rank x row_bytes"},
      {"wrong", "elements differing bit for bit from docs/low_latency.md over all ranks; null when not checked"}};
  doc["wrong_total"] = orNull(lowLatencyWrongTotal(rows));
  Json list = Json::array();
  for (const LowLatencyRow& row : rows) {
    Json r;
    r["tokens"] = row.tokens;
    r["op"] = row.op;
    r["type"] = row.type;
    r["rows_per_rank"] = row.rowsPerRank;
    r["row_bytes"] = row.rowBytes;
    r["size_bytes"] = lowLatencySizeBytes(row);
    r["eager_us"] = statsJson(row.eager);
    r["graph_us"] = statsJson(row.graph);
    r["host_us"] = row.hostUs;
    r["high_throughput_us"] = statsJson(row.highThroughput);
    r["copy_us"] = statsJson(row.copy);
    r["ht_over_ll_eager"] = highThroughputOverEager(row);
    r["ll_graph_over_copy"] = graphOverCopy(row);
    r["wrong"] = orNull(row.wrong);
    r["network_payload_bytes"] = orNull(row.networkPayloadBytes);
    r["wire_bytes"] = orNull(row.wireBytes);
    list.push_back(r);
  }
  doc["rows"] = list;
  return doc.dump(1) + "\n";
}

}  // namespace nccl_moe::perf
