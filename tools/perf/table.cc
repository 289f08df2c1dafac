#include "tools/perf/table.h"

#include <algorithm>
#include <cstdio>

namespace nccl_moe::perf {
namespace {

std::string padLeft(const std::string& text, int width) {
  return text.size() >= static_cast<size_t>(width) ? text : std::string(width - text.size(), ' ') + text;
}

std::string optionalFixed(const std::optional<double>& value, int decimals) {
  return value ? fixed(*value, decimals) : "-";
}

}  // namespace

double dispatchSizeBytes(const RunDescription& run, const Measurement& m) {
  return m.rowsPerRank * static_cast<double>(run.dispatchRowBytes);
}

double combineSizeBytes(const RunDescription& run, const Measurement& m) {
  return m.rowsPerRank * static_cast<double>(run.combineRowBytes);
}

double gbPerSecond(double bytes, double us) { return us > 0 ? bytes / us / 1e3 : 0.0; }

double busShare(const Measurement& m) { return m.rowsPerRank > 0 ? m.remoteRowsPerRank / m.rowsPerRank : 0.0; }

Bandwidths bandwidthsOf(const RunDescription& run, const Measurement& m) {
  Bandwidths b;
  b.dispatchAlgbw = gbPerSecond(dispatchSizeBytes(run, m), m.dispatchUs);
  b.combineAlgbw = gbPerSecond(combineSizeBytes(run, m), m.combineUs);
  b.dispatchBusbw = b.dispatchAlgbw * busShare(m);
  b.combineBusbw = b.combineAlgbw * busShare(m);
  // The copy moved the dispatch bytes of every rank; per rank it is the same share.
  const double copy = gbPerSecond(dispatchSizeBytes(run, m), m.copyUs);
  b.dispatchCopyPercent = copy > 0 ? 100.0 * b.dispatchAlgbw / copy : 0.0;
  b.combineCopyPercent = copy > 0 ? 100.0 * b.combineAlgbw / copy : 0.0;
  if (m.a2avDispatchUs && *m.a2avDispatchUs > 0) b.dispatchRatio = m.dispatchUs / *m.a2avDispatchUs;
  if (m.a2avCombineUs && *m.a2avCombineUs > 0) b.combineRatio = m.combineUs / *m.a2avCombineUs;
  return b;
}

double averageBusBandwidth(const RunDescription& run, const std::vector<Measurement>& rows) {
  if (rows.empty()) return 0.0;
  double sum = 0;
  for (const Measurement& m : rows) {
    const Bandwidths b = bandwidthsOf(run, m);
    sum += b.dispatchBusbw + b.combineBusbw;
  }
  return sum / (2.0 * static_cast<double>(rows.size()));
}

std::optional<int64_t> totalWrong(const std::vector<Measurement>& rows) {
  std::optional<int64_t> total;
  for (const Measurement& m : rows)
    for (const std::optional<int64_t>& wrong : {m.dispatchWrong, m.combineWrong})
      if (wrong) total = total.value_or(0) + *wrong;
  return total;
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string wrongText(const std::optional<int64_t>& wrong) { return wrong ? std::to_string(*wrong) : "N/A"; }

std::vector<Column> tableColumns(const RunDescription& run) {
  std::vector<Column> columns = {
      {"", "tokens", "", 7},         {"", "size", "(B)", 12},          {"", "count", "(rows)", 9},
      {"", "type", "", 5},           {"dispatch", "time", "(us)", 9},  {"dispatch", "algbw", "(GB/s)", 7},
      {"dispatch", "busbw", "(GB/s)", 7}, {"dispatch", "#wrong", "", 7}, {"combine", "time", "(us)", 9},
      {"combine", "algbw", "(GB/s)", 7}, {"combine", "busbw", "(GB/s)", 7}, {"combine", "#wrong", "", 7},
      {"copy roofline", "%disp", "", 6}, {"copy roofline", "%comb", "", 6}, {"a2av baseline", "disp", "(us)", 9},
      {"a2av baseline", "ratio", "", 6}, {"a2av baseline", "comb", "(us)", 9}, {"a2av baseline", "ratio", "", 6},
      {"host", "disp", "(us)", 7}};
  if (run.twoHop())
    for (const char* name : {"nvl", "net", "wire", "wire/pay"})
      columns.push_back({"two-hop, per rank", name, name == std::string("wire/pay") ? "" : "(MB)", 8});
  return columns;
}

std::string headerLines(const std::vector<Column>& columns) {
  std::string groups = "#", names = "#", units = "#";
  for (size_t i = 0; i < columns.size();) {
    // A group spans its consecutive columns; its label is centred over them.
    size_t end = i;
    int span = -1;
    while (end < columns.size() && columns[end].group == columns[i].group) span += columns[end++].width + 1;
    const std::string& label = columns[i].group;
    const int left = std::max(0, (span - static_cast<int>(label.size())) / 2);
    std::string cell = std::string(left, ' ') + label;
    cell.resize(std::max<size_t>(cell.size(), static_cast<size_t>(span)), ' ');
    groups += " " + cell;
    i = end;
  }
  for (const Column& c : columns) {
    names += " " + padLeft(c.name, c.width);
    units += " " + padLeft(c.unit, c.width);
  }
  const auto trimmed = [](std::string line) {
    line.erase(line.find_last_not_of(' ') + 1);
    return line + "\n";
  };
  return trimmed(groups) + trimmed(names) + trimmed(units);
}

std::string rowLine(const std::vector<Column>& columns, const std::vector<std::string>& cells) {
  std::string line = " ";
  for (size_t i = 0; i < columns.size() && i < cells.size(); ++i) line += " " + padLeft(cells[i], columns[i].width);
  return line + "\n";
}

std::vector<std::string> rowCells(const RunDescription& run, const Measurement& m) {
  const Bandwidths b = bandwidthsOf(run, m);
  std::vector<std::string> cells = {std::to_string(m.tokens),
                                    fixed(dispatchSizeBytes(run, m), 0),
                                    fixed(m.rowsPerRank, 0),
                                    run.dispatchType(),
                                    fixed(m.dispatchUs, 2),
                                    fixed(b.dispatchAlgbw, 2),
                                    fixed(b.dispatchBusbw, 2),
                                    wrongText(m.dispatchWrong),
                                    fixed(m.combineUs, 2),
                                    fixed(b.combineAlgbw, 2),
                                    fixed(b.combineBusbw, 2),
                                    wrongText(m.combineWrong),
                                    fixed(b.dispatchCopyPercent, 0),
                                    fixed(b.combineCopyPercent, 0),
                                    optionalFixed(m.a2avDispatchUs, 2),
                                    optionalFixed(b.dispatchRatio, 2),
                                    optionalFixed(m.a2avCombineUs, 2),
                                    optionalFixed(b.combineRatio, 2),
                                    fixed(m.hostUs, 2)};
  if (run.twoHop()) {
    // The library fits every transfer to the counted rows when every rank's layout is in blocking
    // mode (nccl-moe-perf's are): whole slots only carry the layout's meta.
    const double wire = m.traffic.wireCountedRows;
    const double ratio = wireOverPayload(wire, m.traffic.networkPayload);
    cells.push_back(m.twoHop ? fixed(m.traffic.nvlinkPayload / 1e6, 2) : "-");
    cells.push_back(m.twoHop ? fixed(m.traffic.networkPayload / 1e6, 2) : "-");
    cells.push_back(m.twoHop ? fixed(wire / 1e6, 2) : "-");
    cells.push_back(m.twoHop && ratio > 0 ? fixed(ratio, 2) : "-");
  }
  return cells;
}

std::string columnLegend() {
  return "  tokens   tokens per rank (T): the sweep's variable\n"
         "  size     bytes a rank receives in dispatch = count x dispatch row bytes (H x 2 bf16, H x 4 fp32,\n"
         "           H + 4 x ceil(H/128) fp8: codes and scales)\n"
         "  count    rows a rank receives (per-rank layout: one per token and destination rank; expert-major:\n"
         "           one per token and local expert), mean over ranks\n"
         "  type     the rows dispatch moves: bf16, fp32 or fp8 (combine sends rows of -d TYPE back)\n"
         "  time     us per call: the slowest rank's mean over -n calls after -w warm-up calls, ranks started\n"
         "           together\n"
         "  algbw    size / time in GB/s (1e9 B/s); combine's size is count x its row bytes (H x 2 or H x 4)\n"
         "  busbw    the bytes of those rows that cross between ranks / time = algbw x (rows from other ranks /\n"
         "           count): a rank's rows for itself never leave it. nccl-tests' all-to-all busbw,\n"
         "           algbw x (n-1)/n, is the same with uniform traffic\n"
         "  #wrong   elements differing bit for bit from the CPU reference, all ranks (dispatch: row elements\n"
         "           and FP8 scales; combine: output elements, summed in the reference's order); N/A with -c 0\n"
         "  %disp, %comb  algbw as a percentage of the copy roofline: one device-to-device copy of every\n"
         "           rank's dispatch bytes on one GPU, per rank (what the GPU of a one-GPU virtual cluster moves)\n"
         "  a2av     the baseline's us per call (per-rank layout only): a permutation kernel and NCCL\n"
         "           all-to-all-v (grouped send/recv), back with a sum; ratio = our time / the baseline's\n"
         "           (below 1: faster)\n"
         "  host     us of one ncclMoeDispatch call on the host (enqueue only): median of the timed calls,\n"
         "           slowest rank\n"
         "  Avg bus bandwidth: the mean of dispatch's and combine's busbw over the token counts\n";
}

std::string summaryLines(const RunDescription& run, const std::vector<Measurement>& rows) {
  std::string text = "# Avg bus bandwidth    : " + fixed(averageBusBandwidth(run, rows), 3) +
                     " GB/s (mean of dispatch and combine busbw over " + std::to_string(rows.size()) +
                     " token count" + (rows.size() == 1 ? "" : "s") + ")\n";
  if (run.emptyKernelUs)
    text += "# Launch floor         : an empty kernel, " + fixed(*run.emptyKernelUs, 2) +
            " us per call (timed like the calls)\n";
  const std::optional<int64_t> wrong = totalWrong(rows);
  if (!wrong)
    text += "# #wrong elements      : N/A (-c 0: not checked)\n";
  else
    text += "# #wrong elements      : " + std::to_string(*wrong) + (*wrong == 0 ? " OK" : " FAILED") + "\n";
  return text;
}

}  // namespace nccl_moe::perf
