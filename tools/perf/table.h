// nccl-moe-perf's table: what one token count measured, the numbers derived from it (size, algbw,
// busbw, % of the copy roofline, ratio to the baseline), its columns as text, and the summary
// lines at the end. Host code only (tests/tools checks the formatting and the arithmetic).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nccl_moe.h"
#include "tools/perf/run_basics.h"
#include "tools/perf/two_hop_bytes.h"

namespace nccl_moe::perf {

// What stays the same over the sweep.
struct RunDescription : RunBasics {
  std::string dtype = "bf16";  // the token rows' type, combine's too
  bool fp8 = false, expertMajor = false, zeroCopy = false;
  size_t dispatchRowBytes = 0;  // a received row as dispatch writes it (FP8: codes + scales)
  size_t combineRowBytes = 0;   // a row combine sends back (-d TYPE)
  ncclMoeCommInfo_t info = NCCL_MOE_COMM_INFO_INITIALIZER;
  // The launch floor: an empty kernel on the same stream, timed like the calls (us per call). A
  // layout enqueues several kernels and copies; on a one-GPU virtual cluster under MPS each stream
  // operation pays about this much.
  std::optional<double> emptyKernelUs;

  bool twoHop() const { return info.domains > 1; }
  // "bf16", "fp32" or "fp8": the rows dispatch moves.
  std::string dispatchType() const { return fp8 ? "fp8" : dtype; }
};

// One token count.
struct Measurement {
  int tokens = 0;
  double rowsPerRank = 0;        // rows a rank receives, mean over ranks
  double remoteRowsPerRank = 0;  // of them, rows from another rank
  double dispatchUs = 0, combineUs = 0, copyUs = 0;
  std::optional<double> a2avDispatchUs, a2avCombineUs;  // the baseline (per-rank layout only)
  // With --fp8: a plain per-128 quantisation kernel of this rank's tokens, all ranks at once (what a
  // peer taking pre-quantised input runs before its dispatch; ours quantises inside the call).
  std::optional<double> quantizeUs;
  // Uncached, as a step with new routing pays it (DeepEP's "full" dispatch): ncclMoeLayoutCreate with
  // its counts read on the host (ncclMoeHandleGetCounts), alone and followed by the dispatch.
  double layoutUs = 0, layoutDispatchUs = 0;
  double hostUs = 0;      // host time of one ncclMoeDispatch: median of the timed calls, slowest rank
  double hostMeanUs = 0;  // the mean of the same calls (one preempted call of a process weighs in)
  std::optional<int64_t> dispatchWrong, combineWrong;  // elements over all ranks, -c 1 only
  bool twoHop = false;    // several domains: `traffic` is set
  TwoHopBytes traffic;    // per rank
  // Phase spans (µs from the call's start) of layout, dispatch and combine: mean over the timed
  // calls of a separate pass with phase timing on, the slowest rank's start and end.
  std::array<double, ncclMoeNumPhases> phaseStartUs{}, phaseEndUs{};
};

// Bytes per rank (mean over ranks) of dispatch's received rows and of combine's rows.
double dispatchSizeBytes(const RunDescription& run, const Measurement& m);
double combineSizeBytes(const RunDescription& run, const Measurement& m);
// GB/s (1e9 B/s) of `bytes` in `us`; 0 when nothing was timed.
double gbPerSecond(double bytes, double us);
// busbw from algbw: the share of the rows that come from other ranks (0 rows: 0).
double busShare(const Measurement& m);

struct Bandwidths {
  double dispatchAlgbw = 0, dispatchBusbw = 0, combineAlgbw = 0, combineBusbw = 0;
  double dispatchCopyPercent = 0, combineCopyPercent = 0;  // of the copy roofline
  std::optional<double> dispatchRatio, combineRatio;       // our time / the baseline's
};
Bandwidths bandwidthsOf(const RunDescription& run, const Measurement& m);

// The mean of dispatch's and combine's busbw over the rows (0 without rows).
double averageBusBandwidth(const RunDescription& run, const std::vector<Measurement>& rows);
// Wrong elements over the whole sweep, or nullopt when nothing was checked.
std::optional<int64_t> totalWrong(const std::vector<Measurement>& rows);

// A column of the printed table: its group ("dispatch", "combine", ... or ""), name and unit.
struct Column {
  std::string group, name, unit;
  int width = 0;
};

std::vector<Column> tableColumns(const RunDescription& run);
// The three header lines (group, name, unit), each starting with '#'.
std::string headerLines(const std::vector<Column>& columns);
// One line of cells, right-aligned in the columns' widths.
std::string rowLine(const std::vector<Column>& columns, const std::vector<std::string>& cells);
// The cells of one measurement, in tableColumns' order.
std::vector<std::string> rowCells(const RunDescription& run, const Measurement& m);

// What each column means, one indented line or more per column (--help prints it; the table's
// header repeats it with '#').
std::string columnLegend();

// The lines after the table: "# Avg bus bandwidth    : ..." and "# #wrong elements     : ...".
std::string summaryLines(const RunDescription& run, const std::vector<Measurement>& rows);

// "12.34"-style fixed-point text; "N/A" for a missing count.
std::string fixed(double value, int decimals);
std::string wrongText(const std::optional<int64_t>& wrong);

}  // namespace nccl_moe::perf
