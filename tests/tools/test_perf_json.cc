// nccl-moe-perf --json (tools/perf/json_report.h): the fields, the earlier writer's names that
// RESULTS.md runs and the DeepEP compare.py read, nulls where nothing was measured or checked, the
// plot fixture's fields, and a failed write reported.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tool_test_paths.h"
#include "tools/common/output_file.h"
#include "tools/perf/json_report.h"
#include "tools/perf/ll_report.h"
#include "tools/perf/run_basics.h"

namespace nccl_moe::perf {
namespace {

using Json = nlohmann::json;

RunDescription run() {
  RunDescription r;
  r.ranks = 8;
  r.device = "NVIDIA H100 80GB HBM3";
  r.experts = 256;
  r.topk = 8;
  r.hidden = 7168;
  r.sms = 16;
  r.iters = 20;
  r.warmup = 5;
  r.check = true;
  r.dispatchRowBytes = 14336;
  r.combineRowBytes = 14336;
  r.info.domains = 1;
  r.info.ranksPerDomain = 8;
  r.info.bufferBytes = 123456789;
  r.version = "0.1.0 (NCCL 2.28.9)";
  return r;
}

Measurement row(int tokens) {
  Measurement m;
  m.tokens = tokens;
  m.rowsPerRank = 0.66 * tokens;
  m.remoteRowsPerRank = 0.58 * tokens;
  m.dispatchUs = tokens / 10.0;
  m.combineUs = tokens / 8.0;
  m.copyUs = tokens / 20.0;
  m.a2avDispatchUs = tokens / 2.0;
  m.a2avCombineUs = tokens / 2.5;
  m.hostUs = 8.25;
  m.hostMeanUs = 9.5;
  m.dispatchWrong = 0;
  m.combineWrong = 0;
  for (int p = 0; p < ncclMoeNumPhases; ++p) m.phaseStartUs[p] = m.phaseEndUs[p] = -1;
  m.phaseStartUs[ncclMoePhaseLayoutScan] = 1.5;
  m.phaseEndUs[ncclMoePhaseLayoutScan] = 9.0;
  return m;
}

TEST(PerfJson, KeepsTheFieldsItsReadersUse) {
  const Json doc = Json::parse(perfJsonText(run(), {row(256), row(1024)}));
  // compare.py: sms, device, rows[].tokens / rows_per_rank / dispatch_us / combine_us / copy_us /
  // dispatch_bytes / combine_bytes / host_us / phases_us["layout.scan"].
  EXPECT_EQ(doc["sms"], 16);
  EXPECT_EQ(doc["device"], "NVIDIA H100 80GB HBM3");
  for (const char* key : {"ranks", "experts", "topk", "hidden", "fp8", "layout", "zero_copy", "buffer_bytes_per_rank"})
    EXPECT_TRUE(doc.contains(key)) << key;
  ASSERT_EQ(doc["rows"].size(), 2u);
  const Json& r = doc["rows"][1];
  EXPECT_EQ(r["tokens"], 1024);
  EXPECT_DOUBLE_EQ(r["rows_per_rank"].get<double>(), 0.66 * 1024);
  EXPECT_DOUBLE_EQ(r["dispatch_us"].get<double>(), 102.4);
  EXPECT_DOUBLE_EQ(r["combine_us"].get<double>(), 128.0);
  EXPECT_DOUBLE_EQ(r["copy_us"].get<double>(), 51.2);
  EXPECT_DOUBLE_EQ(r["host_us"].get<double>(), 8.25);
  EXPECT_DOUBLE_EQ(r["host_mean_us"].get<double>(), 9.5);
  // All ranks' bytes, as before.
  EXPECT_DOUBLE_EQ(r["dispatch_bytes"].get<double>(), 0.66 * 1024 * 8 * 14336);
  EXPECT_DOUBLE_EQ(r["combine_bytes"].get<double>(), 0.66 * 1024 * 8 * 14336);
  EXPECT_DOUBLE_EQ(r["a2av_dispatch_us"].get<double>(), 512.0);
  EXPECT_TRUE(r["quantize_us"].is_null());
  EXPECT_EQ(r["phases_us"]["layout.scan"], Json::array({1.5, 9.0}));
  EXPECT_EQ(r["phases_us"].size(), 1u);  // phases that did not run are left out
}

TEST(PerfJson, CarriesTheTableColumnsAndTheSummary) {
  const RunDescription description = run();
  const Measurement m = row(1024);
  const Json doc = Json::parse(perfJsonText(description, {m}));
  const Json& r = doc["rows"][0];
  const Bandwidths b = bandwidthsOf(description, m);
  EXPECT_DOUBLE_EQ(r["size_bytes"].get<double>(), dispatchSizeBytes(description, m));
  EXPECT_DOUBLE_EQ(r["count"].get<double>(), m.rowsPerRank);
  EXPECT_EQ(r["type"], "bf16");
  EXPECT_DOUBLE_EQ(r["dispatch_algbw_gbs"].get<double>(), b.dispatchAlgbw);
  EXPECT_DOUBLE_EQ(r["dispatch_busbw_gbs"].get<double>(), b.dispatchBusbw);
  EXPECT_DOUBLE_EQ(r["combine_algbw_gbs"].get<double>(), b.combineAlgbw);
  EXPECT_DOUBLE_EQ(r["combine_busbw_gbs"].get<double>(), b.combineBusbw);
  EXPECT_EQ(r["dispatch_wrong"], 0);
  EXPECT_EQ(r["combine_wrong"], 0);
  EXPECT_DOUBLE_EQ(doc["avg_busbw_gbs"].get<double>(), averageBusBandwidth(description, {m}));
  EXPECT_EQ(doc["wrong_total"], 0);
  EXPECT_EQ(doc["check"], true);
  EXPECT_EQ(doc["version"], "0.1.0 (NCCL 2.28.9)");
  EXPECT_TRUE(doc["definitions"].contains("busbw_gbs"));
  EXPECT_FALSE(doc.contains("domains"));  // one domain: no two-hop fields
}

TEST(PerfJson, NullWhereNothingWasCheckedOrMeasured) {
  RunDescription description = run();
  description.check = false;
  description.expertMajor = true;
  Measurement m = row(128);
  m.dispatchWrong.reset();
  m.combineWrong.reset();
  m.a2avDispatchUs.reset();
  m.a2avCombineUs.reset();
  const Json doc = Json::parse(perfJsonText(description, {m}));
  EXPECT_TRUE(doc["rows"][0]["dispatch_wrong"].is_null());
  EXPECT_TRUE(doc["rows"][0]["combine_wrong"].is_null());
  EXPECT_TRUE(doc["rows"][0]["a2av_dispatch_us"].is_null());
  EXPECT_TRUE(doc["rows"][0]["quantize_us"].is_null());  // not an FP8 run
  EXPECT_TRUE(doc["wrong_total"].is_null());
  EXPECT_EQ(doc["layout"], "expert-major");
}

TEST(PerfJson, TwoHopRunsAddThePlanAndTheTraffic) {
  RunDescription description = run();
  description.info.domains = 2;
  description.info.ranksPerDomain = 4;
  description.info.netChunks = 3;
  Measurement m = row(512);
  m.twoHop = true;
  m.traffic.nvlinkPayload = 1e6;
  m.traffic.networkPayload = 2e6;
  m.traffic.wireFixed = 5000000;
  const Json doc = Json::parse(perfJsonText(description, {m}));
  EXPECT_EQ(doc["domains"], 2);
  EXPECT_EQ(doc["ranks_per_domain"], 4);
  EXPECT_EQ(doc["network_chunks"], 3);
  EXPECT_DOUBLE_EQ(doc["rows"][0]["network_payload_bytes"].get<double>(), 2e6);
  EXPECT_DOUBLE_EQ(doc["rows"][0]["wire_over_payload"].get<double>(), 2.5);
}

// The plot's fixture (tests/tools/fixtures/perf_small.json) must look like what the writer writes.
TEST(PerfJson, ThePlotFixtureHasTheWritersFields) {
  std::ifstream file(kPerfJsonFixture);
  ASSERT_TRUE(file) << kPerfJsonFixture;
  const Json fixture = Json::parse(file);
  const Json written = Json::parse(perfJsonText(run(), {row(256)}));
  for (const auto& item : fixture.items()) {
    if (item.key() == "rows") continue;
    EXPECT_TRUE(written.contains(item.key())) << item.key();
  }
  for (const auto& item : fixture["rows"][0].items()) EXPECT_TRUE(written["rows"][0].contains(item.key())) << item.key();
  for (const auto& item : written["rows"][0].items()) EXPECT_TRUE(fixture["rows"][0].contains(item.key())) << item.key();
}

TEST(PerfJson, WritesTheDocumentAndClosesTheFile) {
  char path[] = "/tmp/nccl-moe-perf-json-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  tools::OutputFile file = tools::OutputFile::create("--json", path);
  const std::string text = perfJsonText(run(), {row(128)});
  writeJson(file, text);
  EXPECT_FALSE(file);
  std::ifstream in(path);
  std::stringstream read;
  read << in.rdbuf();
  EXPECT_EQ(read.str(), text);
  std::remove(path);
}

TEST(PerfJson, AFailedWriteIsAnErrorNamingThePath) {
  // /dev/full opens, and every write to it fails with ENOSPC: seen when the file is flushed.
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  tools::OutputFile file = tools::OutputFile::create("--json", "/dev/full");
  try {
    writeJson(file, perfJsonText(run(), {row(128)}));
    FAIL() << "no error";
  } catch (const std::runtime_error& error) {
    EXPECT_EQ(std::string(error.what()), "cannot write '/dev/full': No space left on device");
  }
}

// Both modes describe their run with the same basics, taken from the options, in the same order
// after the tool's name (and the LL document's mode).
TEST(PerfJson, BothModesWriteTheSameRunBasics) {
  Options o;
  o.experts = 64;
  o.topk = 4;
  o.hidden = 1000;
  o.sms = 12;
  o.iters = 7;
  o.warmup = 3;
  o.check = 0;
  const RunBasics basics = runBasicsOf(o, 4, "GPU X", "9.9.9 (NCCL 1.2.3)");
  RunDescription sweep;
  static_cast<RunBasics&>(sweep) = basics;
  LowLatencyRunDescription low;
  static_cast<RunBasics&>(low) = basics;
  const nlohmann::ordered_json a = nlohmann::ordered_json::parse(perfJsonText(sweep, {}));
  const nlohmann::ordered_json b = nlohmann::ordered_json::parse(lowLatencyJsonText(low, {}));
  const std::vector<std::string> keys = {"version", "ranks",  "device", "experts", "topk",
                                         "hidden",  "sms",    "iters",  "warmup",  "check"};
  for (const nlohmann::ordered_json* doc : {&a, &b}) {
    std::vector<std::string> order;
    for (const auto& item : doc->items())
      if (std::find(keys.begin(), keys.end(), item.key()) != keys.end()) order.push_back(item.key());
    EXPECT_EQ(order, keys);
    EXPECT_EQ((*doc)["version"], "9.9.9 (NCCL 1.2.3)");
    EXPECT_EQ((*doc)["ranks"], 4);
    EXPECT_EQ((*doc)["device"], "GPU X");
    EXPECT_EQ((*doc)["experts"], 64);
    EXPECT_EQ((*doc)["topk"], 4);
    EXPECT_EQ((*doc)["hidden"], 1000);
    EXPECT_EQ((*doc)["sms"], 12);
    EXPECT_EQ((*doc)["iters"], 7);
    EXPECT_EQ((*doc)["warmup"], 3);
    EXPECT_EQ((*doc)["check"], false);
  }
}

TEST(PerfJson, AnFp8RunCarriesTheQuantisationKernelTime) {
  RunDescription description = run();
  description.fp8 = true;
  Measurement m = row(512);
  m.quantizeUs = 12.5;
  const Json doc = Json::parse(perfJsonText(description, {m}));
  EXPECT_DOUBLE_EQ(doc["rows"][0]["quantize_us"].get<double>(), 12.5);
}

TEST(PerfJson, EveryRowCarriesTheUncachedLayoutTimes) {
  Measurement m = row(512);
  m.layoutUs = 61.5;
  m.layoutDispatchUs = 270.25;
  const Json doc = Json::parse(perfJsonText(run(), {m}));
  EXPECT_DOUBLE_EQ(doc["rows"][0]["layout_us"].get<double>(), 61.5);
  EXPECT_DOUBLE_EQ(doc["rows"][0]["layout_dispatch_us"].get<double>(), 270.25);
}

TEST(PerfJson, NoFileNoWrite) {
  tools::OutputFile none;
  EXPECT_NO_THROW(writeJson(none, "{}\n"));
}

}  // namespace
}  // namespace nccl_moe::perf
