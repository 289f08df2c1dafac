// nccl-moe-perf --low-latency on the CPU: its flags and their conflicts, the percentiles, the table
// and JSON, and the per-rank check (tools/perf/ll_check.h) against the CPU oracle of the LL mode
// (reference/low_latency.h) bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "perf_options_parse.h"
#include "reference/low_latency.h"
#include "reference/random_routing.h"
#include "tools/perf/ll_check.h"
#include "tools/perf/ll_report.h"
#include "tools/perf/options.h"

namespace nccl_moe::perf {
namespace {

using test::parsed;
using test::usageErrorOf;

TEST(PerfLowLatencyOptions, DefaultsAreTheIssuesSweep) {
  const Options o = parsed({"--low-latency"});
  EXPECT_TRUE(o.lowLatency);
  EXPECT_EQ(tokenSweep(o), (std::vector<int>{1, 8, 32, 128, 256}));
  EXPECT_EQ(o.lowLatencyMaxTokens(), 256);
  EXPECT_EQ(o.lowLatencyDispatchTypes(), (std::vector<std::string>{"bf16", "fp8"}));
  EXPECT_EQ(o.iters, kLowLatencyIters);
  EXPECT_EQ(o.warmup, kLowLatencyWarmup);
  EXPECT_EQ(o.hidden, 7168);
  EXPECT_EQ(o.topk, 8);
  EXPECT_EQ(o.experts, 256);
  // Given -n / -w win; the HT defaults stay without --low-latency.
  const Options given = parsed({"--low-latency", "-n", "50", "-w", "0", "--tokens", "4,1K", "--ll-dispatch", "fp8-pow2"});
  EXPECT_EQ((std::vector<int>{given.iters, given.warmup}), (std::vector<int>{50, 0}));
  EXPECT_EQ(tokenSweep(given), (std::vector<int>{4, 1024}));
  EXPECT_EQ(given.lowLatencyDispatchTypes(), (std::vector<std::string>{"fp8-pow2"}));
  EXPECT_EQ(parsed({}).iters, 20);
  EXPECT_EQ(parsed({"--low-latency", "--tokens", "8", "--ll-max-tokens", "64"}).lowLatencyMaxTokens(), 64);
}

TEST(PerfLowLatencyOptions, TokenListsAreChecked) {
  EXPECT_EQ(usageErrorOf({"--low-latency", "--tokens", "8,4"}), "--tokens: 4 after 8: the token counts must increase");
  EXPECT_EQ(usageErrorOf({"--low-latency", "--tokens", "8,8"}), "--tokens: 8 after 8: the token counts must increase");
  EXPECT_EQ(usageErrorOf({"--low-latency", "--tokens", "0"}), "--tokens: '0' is out of range, want [1, 1024]");
  EXPECT_EQ(usageErrorOf({"--low-latency", "--tokens", "2K"}), "--tokens: '2K' is out of range, want [1, 1024]");
  EXPECT_EQ(usageErrorOf({"--low-latency", "--tokens", "1,,8"}),
            "--tokens: '' is not a count (digits, optionally followed by K, M or G)");
  EXPECT_EQ(usageErrorOf({"--low-latency", "--tokens", "1;8"}),
            "--tokens: '1;8' is not a count (digits, optionally followed by K, M or G)");
  EXPECT_EQ(usageErrorOf({"--low-latency", "--tokens", "128", "--ll-max-tokens", "64"}),
            "--ll-max-tokens 64 is less than the largest of --tokens, 128");
  EXPECT_EQ(usageErrorOf({"--low-latency", "--ll-max-tokens", "2000"}),
            "--ll-max-tokens: '2000' is out of range, want [0, 1024]");
  EXPECT_EQ(usageErrorOf({"--low-latency", "--ll-dispatch", "fp16"}),
            "--ll-dispatch: 'fp16' is not one of both, bf16, fp8, fp8-pow2");
}

TEST(PerfLowLatencyOptions, FlagsOfTheOtherModeAreRefused) {
  EXPECT_EQ(usageErrorOf({"--tokens", "8"}), "--tokens is a --low-latency flag");
  EXPECT_EQ(usageErrorOf({"--ll-dispatch", "bf16"}), "--ll-dispatch is a --low-latency flag");
  EXPECT_EQ(usageErrorOf({"--low-latency", "-b", "8"}),
            "-b sets the high-throughput sweep; with --low-latency the token counts are --tokens LIST");
  EXPECT_EQ(usageErrorOf({"--low-latency", "--fp8"}),
            "--fp8 does not apply to --low-latency (its dispatch types are --ll-dispatch; its rows are bf16 in the "
            "LL layout)");
  EXPECT_EQ(usageErrorOf({"--low-latency", "-d", "fp32"}), "-d fp32: the low-latency calls move bf16 rows");
}

TEST(PerfLowLatencyReport, NearestRankPercentiles) {
  std::vector<double> samples;
  for (int i = 100; i >= 1; --i) samples.push_back(i);
  LatencyStats s = latencyStats(samples);
  EXPECT_DOUBLE_EQ(s.p50, 50.0);
  EXPECT_DOUBLE_EQ(s.p99, 99.0);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  s = latencyStats({7.0});
  EXPECT_DOUBLE_EQ(s.p50, 7.0);
  EXPECT_DOUBLE_EQ(s.p99, 7.0);
  s = latencyStats({1, 2, 3, 1000});  // one slow call of four: p99 sees it, p50 does not
  EXPECT_DOUBLE_EQ(s.p50, 2.0);
  EXPECT_DOUBLE_EQ(s.p99, 1000.0);
  s = latencyStats({});
  EXPECT_DOUBLE_EQ(s.p50 + s.p99 + s.mean, 0.0);
}

LowLatencyRunDescription run() {
  LowLatencyRunDescription r;
  r.ranks = 8;
  r.device = "NVIDIA H100 80GB HBM3";
  r.experts = 256;
  r.topk = 8;
  r.hidden = 7168;
  r.maxTokens = 256;
  r.sms = 24;
  r.iters = 1000;
  r.warmup = 100;
  r.check = true;
  r.dispatchTypes = {"bf16", "fp8"};
  r.lowLatencyBufferBytes = {117631488, 89194496};
  r.version = "0.1.0 (NCCL 2.28.9)";
  return r;
}

LowLatencyRow row() {
  LowLatencyRow r;
  r.tokens = 128;
  r.op = "dispatch";
  r.type = "fp8";
  r.rowsPerRank = 1024;
  r.rowBytes = 7168 + 4 * 56;
  r.eager = {20.0, 31.5, 20.4};
  r.graph = {16.0, 22.0, 16.5};
  r.hostUs = 3.25;
  r.highThroughput = {400.0, 480.0, 410.0};
  r.copy = {8.0, 9.0, 8.1};
  r.wrong = 0;
  return r;
}

TEST(PerfLowLatencyReport, TableLine) {
  const LowLatencyRunDescription r = run();
  const std::vector<Column> columns = lowLatencyColumns(r);
  const std::vector<std::string> cells = lowLatencyCells(r, row());
  ASSERT_EQ(cells.size(), columns.size());
  EXPECT_EQ(cells, (std::vector<std::string>{"128", "dispatch", "fp8", "7569408", "1024", "20.00", "31.50", "16.00",
                                             "22.00", "3.25", "400.00", "20.00", "8.00", "2.00", "0"}));
  EXPECT_DOUBLE_EQ(highThroughputOverEager(row()), 20.0);
  EXPECT_DOUBLE_EQ(graphOverCopy(row()), 2.0);
  const std::string header = headerLines(columns);
  EXPECT_NE(header.find("eager"), std::string::npos) << header;
  EXPECT_NE(header.find("high-throughput"), std::string::npos) << header;
  EXPECT_NE(header.find("copy floor"), std::string::npos) << header;
  EXPECT_NE(header.find("ll/copy"), std::string::npos) << header;
  // Nothing measured: dashes, not zeros or infinities; -c 0: N/A.
  LowLatencyRow empty;
  empty.op = "combine";
  empty.type = "bf16";
  const std::vector<std::string> blank = lowLatencyCells(r, empty);
  EXPECT_EQ(blank[5], "-");
  EXPECT_EQ(blank[11], "-");
  EXPECT_EQ(blank[13], "-");
  EXPECT_EQ(blank[14], "N/A");
  // Several domains add the network columns.
  LowLatencyRunDescription two = r;
  two.domains = 2;
  LowLatencyRow net = row();
  net.networkPayloadBytes = 2.5e6;
  EXPECT_EQ(lowLatencyColumns(two).size(), columns.size() + 2);
  const std::vector<std::string> netCells = lowLatencyCells(two, net);
  EXPECT_EQ(netCells[netCells.size() - 2], "2.50");
  EXPECT_EQ(netCells.back(), "-");
}

TEST(PerfLowLatencyReport, SummaryAndJson) {
  std::vector<LowLatencyRow> rows = {row(), row()};
  rows[1].op = "combine";
  rows[1].hostUs = 4.5;
  rows[1].wrong = 3;
  LowLatencyRunDescription described = run();
  described.emptyKernel = {3.25, 6.5, 4.0};
  described.emptyKernelHostUs = 2.25;
  EXPECT_EQ(lowLatencySummaryLines(described, rows),
            "# Largest host time    : 4.50 us per call\n"
            "# Launch floor         : an empty kernel, 2.25 us host, p50 3.25 / p99 6.50 us GPU (timed like the calls)\n"
            "# #wrong elements      : 3 FAILED\n");
  rows[1].wrong = 0;
  EXPECT_NE(lowLatencySummaryLines(described, rows).find("0 OK"), std::string::npos);
  rows[0].wrong.reset();
  rows[1].wrong.reset();
  EXPECT_NE(lowLatencySummaryLines(described, rows).find("N/A (-c 0: not checked)"), std::string::npos);

  rows = {row()};
  const nlohmann::json doc = nlohmann::json::parse(lowLatencyJsonText(described, rows));
  EXPECT_DOUBLE_EQ(doc["empty_kernel_us"]["p99"].get<double>(), 6.5);
  EXPECT_DOUBLE_EQ(doc["empty_kernel_host_us"].get<double>(), 2.25);
  EXPECT_EQ(doc["mode"], "low-latency");
  EXPECT_EQ(doc["ll_max_tokens"], 256);
  EXPECT_EQ(doc["dispatch_types"], nlohmann::json({"bf16", "fp8"}));
  EXPECT_EQ(doc["ll_buffer_bytes_per_rank"][1], 89194496);
  EXPECT_EQ(doc["wrong_total"], 0);
  ASSERT_EQ(doc["rows"].size(), 1u);
  const nlohmann::json& r = doc["rows"][0];
  EXPECT_EQ(r["op"], "dispatch");
  EXPECT_DOUBLE_EQ(r["eager_us"]["p99"].get<double>(), 31.5);
  EXPECT_DOUBLE_EQ(r["graph_us"]["p50"].get<double>(), 16.0);
  EXPECT_DOUBLE_EQ(r["high_throughput_us"]["p50"].get<double>(), 400.0);
  EXPECT_DOUBLE_EQ(r["copy_us"]["p50"].get<double>(), 8.0);
  EXPECT_DOUBLE_EQ(r["size_bytes"].get<double>(), 1024.0 * 7392);
  EXPECT_DOUBLE_EQ(r["ht_over_ll_eager"].get<double>(), 20.0);
  EXPECT_TRUE(r["network_payload_bytes"].is_null());
  for (const char* key : {"latency_us", "eager", "graph", "host_us", "high_throughput", "copy", "wrong"})
    EXPECT_TRUE(doc["definitions"].contains(key)) << key;
}

// A group of 4 ranks with uneven T (one rank with none), masked slots and an odd hidden size, in
// domains of `perDomain` ranks.
LowLatencyGroup group(int fp8, int perDomain = 4) {
  LowLatencyGroup g;
  g.shape = LowLatencyShape{4, perDomain, 16, 200, 4, 12, fp8 != 0, fp8 == 2};
  g.topk = 3;
  g.expertSeed = 99;
  std::mt19937_64 rng(5);
  RoutingRecipe recipe;
  recipe.topk = g.topk;
  recipe.experts = g.shape.experts;
  recipe.maskedFraction = 0.2;
  recipe.withProbs = false;
  std::uniform_real_distribution<float> weight(-1.0f, 1.0f);
  for (int r = 0; r < g.shape.ranks; ++r) {
    recipe.numTokens = r == 2 ? 0 : 12 - 3 * r;
    g.routings.push_back(randomTopkRouting(recipe, rng));
    g.x.push_back(randomRows(ElementType::kBf16, recipe.numTokens, g.shape.hidden, 3.0f, rng));
    std::vector<float> w(static_cast<size_t>(recipe.numTokens) * g.topk);
    for (float& v : w) v = weight(rng);
    g.weights.push_back(w);
  }
  return g;
}

TEST(PerfLowLatencyCheck, DispatchMatchesTheOracleAndCountsWrongElements) {
  for (int fp8 : {0, 1, 2}) {
    SCOPED_TRACE("lowLatencyFp8 " + std::to_string(fp8));
    const LowLatencyGroup g = group(fp8);
    std::vector<LowLatencyRankOutput> oracle;
    ASSERT_TRUE(lowLatencyDispatch(g.shape, g.routings, g.x, &oracle).isOk());
    const std::vector<int64_t> received = receivedRowsPerRank(g);
    for (int rank = 0; rank < g.shape.ranks; ++rank) {
      const LowLatencyRankLayout layout = expectedLayout(g, rank);
      EXPECT_EQ(layout.counts, oracle[rank].layout.counts);
      int64_t rows = 0;
      for (int32_t c : layout.counts) rows += c;
      EXPECT_EQ(rows, received[rank]);
      LowLatencyDispatchOutput got;
      got.recvX = oracle[rank].x.bytes();
      got.recvScales = oracle[rank].scales;
      got.recvCount = oracle[rank].layout.counts;
      got.recvSrcInfo = oracle[rank].layout.srcInfo;
      std::string first;
      EXPECT_EQ(wrongDispatchElements(g, layout, got, &first), 0) << first;
      if (rows == 0) continue;
      // One element of the first row of the first non-empty segment, then its scale and source info.
      int l = 0;
      while (layout.counts[l] == 0) ++l;
      const int64_t at = l * g.shape.segmentRows();
      LowLatencyDispatchOutput bad = got;
      bad.recvX[static_cast<size_t>(at) * g.shape.hidden * (fp8 ? 1 : 2) + 3] ^= 0x01;
      bad.recvSrcInfo[static_cast<size_t>(at) * 3 + 1] += 1;
      if (fp8) bad.recvScales[static_cast<size_t>(lowLatencyScaleIndex(g.shape, l, 0, 1))] *= 2.0f;
      first.clear();
      EXPECT_EQ(wrongDispatchElements(g, layout, bad, &first), fp8 ? 3 : 2);
      EXPECT_NE(first.find("segment " + std::to_string(l) + " row 0"), std::string::npos) << first;
      bad = got;
      bad.recvCount[static_cast<size_t>(l)] += 1;
      EXPECT_EQ(wrongDispatchElements(g, layout, bad, nullptr), 1);
    }
  }
}

void expectCombineMatchesTheOracle(int perDomain) {
  const LowLatencyGroup g = group(0, perDomain);
  std::vector<LowLatencyRankOutput> oracle;
  ASSERT_TRUE(lowLatencyDispatch(g.shape, g.routings, g.x, &oracle).isOk());
  std::vector<LowLatencyLayout> layouts;
  std::vector<HostRows> y;
  for (int rank = 0; rank < g.shape.ranks; ++rank) {
    layouts.push_back(oracle[rank].layout);
    y.push_back(expertOutputs(g, expectedLayout(g, rank)));
  }
  for (bool weighted : {true, false}) {
    SCOPED_TRACE(weighted ? "weighted" : "unweighted");
    std::vector<HostRows> out;
    ASSERT_TRUE(lowLatencyCombine(g.shape, g.routings, layouts, y, weighted ? &g.weights : nullptr, &out).isOk());
    for (int rank = 0; rank < g.shape.ranks; ++rank) {
      const HostRows want = expectedCombine(g, rank, weighted);
      EXPECT_EQ(want.bytes(), out[rank].bytes()) << "rank " << rank;
      std::string first;
      EXPECT_EQ(wrongRows(want, out[rank].bytes(), &first), 0) << first;
      if (want.rows() == 0) continue;
      std::vector<uint8_t> bad = out[rank].bytes();
      bad[5] ^= 0x40;
      EXPECT_EQ(wrongRows(want, bad, &first), 1);
      EXPECT_EQ(first, "token 0 element 2 differs");
    }
  }
}

TEST(PerfLowLatencyCheck, CombineMatchesTheOracle) {
  // One domain, and the two-hop order of 2 x 2 and 4 x 1 (node partials summed by domain).
  for (int perDomain : {4, 2, 1}) {
    SCOPED_TRACE("ranks per domain " + std::to_string(perDomain));
    expectCombineMatchesTheOracle(perDomain);
  }
}

TEST(PerfLowLatencyCheck, ExpertRowsDependOnlyOnTheirSource) {
  std::vector<uint16_t> a(64), b(64), c(64);
  expertOutputRow(1, 2, 3, 4, 64, a.data());
  expertOutputRow(1, 2, 3, 4, 64, b.data());
  expertOutputRow(1, 2, 3, 5, 64, c.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (uint16_t v : a) EXPECT_LE(std::abs(bf16ToFloat(v)), 4.0f);
}

}  // namespace
}  // namespace nccl_moe::perf
