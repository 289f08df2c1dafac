// nccl-moe-perf's table (tools/perf/table.h): the bandwidth arithmetic, the columns as text, the
// N/A of an unchecked run and the summary lines.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "tools/perf/table.h"

namespace nccl_moe::perf {
namespace {

RunDescription bf16Run() {
  RunDescription run;
  run.ranks = 4;
  run.hidden = 1024;
  run.dispatchRowBytes = 2048;
  run.combineRowBytes = 2048;
  run.check = true;
  run.info.domains = 1;
  run.info.ranksPerDomain = 4;
  return run;
}

Measurement measured() {
  Measurement m;
  m.tokens = 1024;
  m.rowsPerRank = 1000;       // 2,048,000 B per rank
  m.remoteRowsPerRank = 750;  // three quarters from other ranks
  m.dispatchUs = 100;
  m.combineUs = 200;
  m.copyUs = 50;
  m.a2avDispatchUs = 400;
  m.a2avCombineUs = 100;
  m.hostUs = 7.5;
  m.dispatchWrong = 0;
  m.combineWrong = 3;
  return m;
}

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(PerfTable, SizeAlgbwAndBusbwFollowTheirDefinitions) {
  const RunDescription run = bf16Run();
  const Measurement m = measured();
  EXPECT_DOUBLE_EQ(dispatchSizeBytes(run, m), 1000.0 * 2048);
  EXPECT_DOUBLE_EQ(combineSizeBytes(run, m), 1000.0 * 2048);
  const Bandwidths b = bandwidthsOf(run, m);
  EXPECT_DOUBLE_EQ(b.dispatchAlgbw, 2048000.0 / 100 / 1e3);  // B/us / 1e3 = GB/s
  EXPECT_DOUBLE_EQ(b.dispatchBusbw, b.dispatchAlgbw * 0.75);  // only rows from other ranks cross
  EXPECT_DOUBLE_EQ(b.combineAlgbw, 2048000.0 / 200 / 1e3);
  EXPECT_DOUBLE_EQ(b.combineBusbw, b.combineAlgbw * 0.75);
  EXPECT_DOUBLE_EQ(b.dispatchCopyPercent, 50.0);  // the copy took half the time
  EXPECT_DOUBLE_EQ(b.combineCopyPercent, 25.0);
  EXPECT_DOUBLE_EQ(*b.dispatchRatio, 0.25);  // our time / the baseline's
  EXPECT_DOUBLE_EQ(*b.combineRatio, 2.0);
}

TEST(PerfTable, BusbwOfUniformTrafficIsNcclTestsAllToAll) {
  // Every rank receives equally from all n ranks: busbw = algbw x (n-1)/n, as nccl-tests' alltoall.
  const RunDescription run = bf16Run();
  Measurement m = measured();
  m.rowsPerRank = 800;
  m.remoteRowsPerRank = 600;
  const Bandwidths b = bandwidthsOf(run, m);
  EXPECT_DOUBLE_EQ(b.dispatchBusbw, b.dispatchAlgbw * (run.ranks - 1) / run.ranks);
}

TEST(PerfTable, FP8SizeCountsCodesAndScalesAndCombineItsOwnRows) {
  RunDescription run = bf16Run();
  run.fp8 = true;
  run.dispatchRowBytes = 1024 + 8 * 4;  // H codes + ceil(H/128) fp32 scales
  const Measurement m = measured();
  EXPECT_DOUBLE_EQ(dispatchSizeBytes(run, m), 1000.0 * 1056);
  EXPECT_DOUBLE_EQ(combineSizeBytes(run, m), 1000.0 * 2048);
  EXPECT_EQ(run.dispatchType(), "fp8");
  EXPECT_EQ(rowCells(run, m)[3], "fp8");
}

TEST(PerfTable, NothingTimedIsZeroNotInfinite) {
  const RunDescription run = bf16Run();
  Measurement m;
  const Bandwidths b = bandwidthsOf(run, m);
  EXPECT_EQ(b.dispatchAlgbw, 0.0);
  EXPECT_EQ(b.dispatchBusbw, 0.0);
  EXPECT_EQ(b.dispatchCopyPercent, 0.0);
  EXPECT_FALSE(b.dispatchRatio);
}

TEST(PerfTable, HeaderHasGroupNameAndUnitLinesAlignedWithTheRows) {
  const RunDescription run = bf16Run();
  const std::vector<Column> columns = tableColumns(run);
  const std::vector<std::string> header = linesOf(headerLines(columns));
  ASSERT_EQ(header.size(), 3u);
  for (const std::string& line : header) EXPECT_EQ(line[0], '#') << line;
  EXPECT_NE(header[0].find("dispatch"), std::string::npos);
  EXPECT_NE(header[0].find("combine"), std::string::npos);
  for (const char* name : {"tokens", "size", "count", "type", "time", "algbw", "busbw", "#wrong"})
    EXPECT_NE(header[1].find(name), std::string::npos) << name;
  for (const char* unit : {"(B)", "(rows)", "(us)", "(GB/s)"}) EXPECT_NE(header[2].find(unit), std::string::npos) << unit;
  // Every cell ends where its column's name ends.
  const std::string row = rowLine(columns, rowCells(run, measured()));
  size_t end = 1;
  for (const Column& c : columns) {
    end += 1 + c.width;
    EXPECT_NE(header[1][end - 1], ' ') << c.name;
    EXPECT_NE(row[end - 1], ' ') << c.name;
    EXPECT_TRUE(end == row.size() - 1 || row[end] == ' ') << c.name;  // then a space, or the newline
  }
  EXPECT_EQ(row.size(), end + 1);
}

TEST(PerfTable, CellsOfACheckedRow) {
  const RunDescription run = bf16Run();
  const std::vector<std::string> cells = rowCells(run, measured());
  const std::vector<std::string> want = {"1024", "2048000", "1000", "bf16", "100.00", "20.48", "15.36", "0",
                                         "200.00", "10.24", "7.68", "3", "50", "25", "400.00", "0.25", "100.00",
                                         "2.00", "7.50"};
  EXPECT_EQ(cells, want);
}

TEST(PerfTable, UncheckedIsNotApplicableAndNoBaselineIsADash) {
  RunDescription run = bf16Run();
  run.check = false;
  run.expertMajor = true;
  Measurement m = measured();
  m.dispatchWrong.reset();
  m.combineWrong.reset();
  m.a2avDispatchUs.reset();
  m.a2avCombineUs.reset();
  const std::vector<std::string> cells = rowCells(run, m);
  EXPECT_EQ(cells[7], "N/A");
  EXPECT_EQ(cells[11], "N/A");
  EXPECT_EQ(cells[14], "-");
  EXPECT_EQ(cells[15], "-");
  EXPECT_EQ(wrongText(std::nullopt), "N/A");
  EXPECT_EQ(wrongText(0), "0");
}

TEST(PerfTable, TwoHopAddsItsColumns) {
  RunDescription run = bf16Run();
  run.info.domains = 2;
  run.info.ranksPerDomain = 2;
  Measurement m = measured();
  m.twoHop = true;
  m.traffic.nvlinkPayload = 3e6;
  m.traffic.networkPayload = 2e6;
  m.traffic.wireCountedRows = 2.5e6;
  const std::vector<Column> columns = tableColumns(run);
  const std::vector<std::string> cells = rowCells(run, m);
  ASSERT_EQ(columns.size(), cells.size());
  EXPECT_EQ(columns.size(), tableColumns(bf16Run()).size() + 4);
  EXPECT_EQ(std::vector<std::string>(cells.end() - 4, cells.end()),
            (std::vector<std::string>{"3.00", "2.00", "2.50", "1.25"}));
  EXPECT_NE(headerLines(columns).find("two-hop"), std::string::npos);
}

TEST(PerfTable, AverageBusBandwidthIsTheMeanOfBothOpsOverTheRows) {
  const RunDescription run = bf16Run();
  Measurement a = measured(), b = measured();
  b.dispatchUs = 50;
  const double want = (bandwidthsOf(run, a).dispatchBusbw + bandwidthsOf(run, a).combineBusbw +
                       bandwidthsOf(run, b).dispatchBusbw + bandwidthsOf(run, b).combineBusbw) /
                      4;
  EXPECT_DOUBLE_EQ(averageBusBandwidth(run, {a, b}), want);
  EXPECT_EQ(averageBusBandwidth(run, {}), 0.0);
}

TEST(PerfTable, SummaryLinesLikeNcclTests) {
  const RunDescription run = bf16Run();
  Measurement ok = measured();
  ok.combineWrong = 0;
  const std::vector<std::string> good = linesOf(summaryLines(run, {ok}));
  ASSERT_EQ(good.size(), 2u);
  EXPECT_EQ(good[0], "# Avg bus bandwidth    : " + fixed(averageBusBandwidth(run, {ok}), 3) +
                         " GB/s (mean of dispatch and combine busbw over 1 token count)");
  EXPECT_EQ(good[1], "# #wrong elements      : 0 OK");
  EXPECT_EQ(linesOf(summaryLines(run, {ok, measured()}))[1], "# #wrong elements      : 3 FAILED");
  RunDescription floored = run;
  floored.emptyKernelUs = 27.25;
  const std::vector<std::string> withFloor = linesOf(summaryLines(floored, {ok}));
  ASSERT_EQ(withFloor.size(), 3u);
  EXPECT_EQ(withFloor[1], "# Launch floor         : an empty kernel, 27.25 us per call (timed like the calls)");
  EXPECT_EQ(withFloor[2], "# #wrong elements      : 0 OK");
  Measurement unchecked = measured();
  unchecked.dispatchWrong.reset();
  unchecked.combineWrong.reset();
  EXPECT_EQ(linesOf(summaryLines(run, {unchecked}))[1], "# #wrong elements      : N/A (-c 0: not checked)");
  EXPECT_FALSE(totalWrong({unchecked}));
  EXPECT_EQ(totalWrong({ok, measured()}), 3);
}

TEST(PerfTable, TheLegendDefinesEveryColumn) {
  const std::string legend = columnLegend();
  for (const char* name : {"tokens", "size", "count", "type", "time", "algbw", "busbw", "#wrong", "%disp", "%comb",
                           "a2av", "ratio", "host", "Avg bus bandwidth", "N/A with -c 0"})
    EXPECT_NE(legend.find(name), std::string::npos) << name;
}

}  // namespace
}  // namespace nccl_moe::perf
