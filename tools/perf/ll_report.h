// nccl-moe-perf --low-latency: what one (token count, operation) measured, its table line, the
// column legend, the summary lines and the JSON document. Host code only (tests/tools checks the
// formatting and the arithmetic).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/perf/table.h"

namespace nccl_moe::perf {

// Per-call latencies of one measurement, µs: p50 and p99 are the nearest-rank percentiles of the
// timed calls (each between two CUDA events), each the slowest rank's; mean likewise.
struct LatencyStats {
  double p50 = 0, p99 = 0, mean = 0;
};
// The percentiles of one rank's samples (µs). Nearest rank: the ceil(q x n)-th smallest. Empty: 0.
LatencyStats latencyStats(std::vector<double> samples);

// What stays the same over the sweep.
struct LowLatencyRunDescription : RunBasics {
  int maxTokens = 0;  // N = lowLatencyMaxTokens of every communicator of the run
  int domains = 1, ranksPerDomain = 1;
  std::vector<std::string> dispatchTypes;  // "bf16", "fp8", "fp8-pow2": one communicator each
  std::vector<size_t> lowLatencyBufferBytes;  // per communicator, per rank (ncclMoeCommInfo_t)
  // The launch floor: an empty kernel on the same stream, timed like the calls: what any one-kernel
  // call pays on this machine (GPU p50 between events, host median of the enqueue).
  LatencyStats emptyKernel;
  double emptyKernelHostUs = 0;
};

// One line: one operation at one token count.
struct LowLatencyRow {
  int tokens = 0;
  std::string op;    // "dispatch" or "combine"
  std::string type;  // the rows it moves: "bf16", "fp8", "fp8-pow2"
  double rowsPerRank = 0;  // rows a rank receives in the LL layout (one per token and kept slot), mean
  double rowBytes = 0;     // bytes of one such row: 2H bf16, H + 4 x ceil(H/128) FP8
  LatencyStats eager, graph;
  double hostUs = 0;       // host time of one eager call (the enqueue): median, slowest rank
  LatencyStats highThroughput;  // layout + dispatch, or combine, of the HT path, same routing
  LatencyStats copy;            // one device-to-device copy of every rank's bytes by one GPU
  std::optional<int64_t> wrong;  // -c 1 only
  // Several NVLink domains only: bytes per rank over the network, the payload (one row per token
  // and other domain it needs, this routing) and what the fixed-slot exchange puts on the wire.
  std::optional<double> networkPayloadBytes, wireBytes;
};

// size = rowsPerRank x rowBytes; ratios (0 when the denominator was not measured).
double lowLatencySizeBytes(const LowLatencyRow& row);
double highThroughputOverEager(const LowLatencyRow& row);  // HT p50 / LL eager p50: the speed-up
double graphOverCopy(const LowLatencyRow& row);            // LL graph p50 / copy floor p50

std::vector<Column> lowLatencyColumns(const LowLatencyRunDescription& run);
std::vector<std::string> lowLatencyCells(const LowLatencyRunDescription& run, const LowLatencyRow& row);
std::string lowLatencyLegend();
// "# #wrong elements : ..." and the largest host time per call.
std::string lowLatencySummaryLines(const LowLatencyRunDescription& run, const std::vector<LowLatencyRow>& rows);
std::optional<int64_t> lowLatencyWrongTotal(const std::vector<LowLatencyRow>& rows);
// The document, indented, ending with a newline (written with nlohmann/json).
std::string lowLatencyJsonText(const LowLatencyRunDescription& run, const std::vector<LowLatencyRow>& rows);

}  // namespace nccl_moe::perf
