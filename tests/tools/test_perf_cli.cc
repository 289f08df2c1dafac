// nccl-moe-perf as users start it, with bad flags: exit status 2 and a message naming the flag,
// before any CUDA or NCCL call (these tests pass on a machine without a GPU). Flags that pass
// reach the next check, the rank layout, which fails the same way on a malformed launcher variable.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../support/gpu.h"
#include "nccl_moe.h"
#include "tool_run.h"
#include "tool_test_paths.h"
#include "tools/common/flags.h"

namespace nccl_moe::tools {
namespace {

ToolRun perf(std::vector<std::string> arguments, std::vector<std::string> environment = {}) {
  return runTool(kNcclMoePerfPath, {std::move(arguments), std::move(environment), ""});
}

// Exit status 2 with exactly "nccl-moe-perf: <message>" on stderr, nothing on stdout.
void expectUsageError(const ToolRun& run, const std::string& message) {
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_EQ(run.err, "nccl-moe-perf: " + message + "\n");
  EXPECT_EQ(run.out, "");
}

// Flags accepted: the run went on to the rank layout, the check after them, and stopped there at a
// malformed launcher variable (without one it would start a run of one rank).
void expectFlagsAccepted(std::vector<std::string> arguments) {
  expectUsageError(perf(std::move(arguments), {"RANK=not-a-rank"}), "RANK='not-a-rank' is not an integer >= 0");
}

TEST(ToolPerfCli, ZeroBeginIsRefusedNotLoopedOn) {
  expectUsageError(perf({"-b", "0"}), "-b: '0' is out of range, want [1, 1M]");
}

TEST(ToolPerfCli, NegativeSizeIsRefused) {
  expectUsageError(perf({"-e", "-5"}), "-e: '-5' is out of range, want [1, 1M]");
}

TEST(ToolPerfCli, GarbageAndOverflowAreRefused) {
  expectUsageError(perf({"-n", "abc"}), "-n: 'abc' is not an integer");
  expectUsageError(perf({"-n", "99999999999999999999"}),
                   "-n: '99999999999999999999' is out of range, want [1, 1000000]");
  expectUsageError(perf({"-b", "12x"}), "-b: '12x' is not a count (digits, optionally followed by K, M or G)");
  expectUsageError(perf({"--seed", "-1"}), "--seed: '-1' is out of range, want [0, 9223372036854775807]");
}

TEST(ToolPerfCli, ZeroIterationsAreRefusedNotRaised) {
  expectUsageError(perf({"-n", "0"}), "-n: '0' is out of range, want [1, 1000000]");
  expectUsageError(perf({"-w", "-1"}), "-w: '-1' is out of range, want [0, 1000000]");
}

TEST(ToolPerfCli, FactorOneIsRefusedOnlyWhenThereIsASweep) {
  expectUsageError(perf({"-f", "1"}), "-f 1 must be at least 2 to step from -b 128 to -e 4096");
  expectFlagsAccepted({"-b", "256", "-e", "256", "-f", "1"});
}

TEST(ToolPerfCli, BeginAboveEndIsRefused) {
  expectUsageError(perf({"-b", "4096", "-e", "128"}), "-b 4096 is more than -e 128");
}

TEST(ToolPerfCli, ShapeFlagsAreChecked) {
  expectUsageError(perf({"--experts", "4", "--topk", "8"}),
                   "--topk 8 is more than --experts 4 (a token picks distinct experts)");
  expectUsageError(perf({"--hidden", "0"}), "--hidden: '0' is out of range, want [1, 65536]");
  expectUsageError(perf({"--sms", "2000"}), "--sms: '2000' is out of range, want [1, 1024]");
}

TEST(ToolPerfCli, UnknownFlagAndMissingValue) {
  expectUsageError(perf({"--bogus"}), "unknown flag '--bogus' (nccl-moe-perf --help lists the flags)");
  expectUsageError(perf({"--json"}), "--json needs a value (FILE)");
  expectUsageError(perf({"-b"}), "-b needs a value (N)");
}

TEST(ToolPerfCli, SizesTakeSuffixes) { expectFlagsAccepted({"-b", "1K", "-e", "4K", "--json=x.json"}); }

TEST(ToolPerfCli, ExpertsMustSplitOverTheRanks) {
  expectUsageError(perf({"--experts", "256"}, rankEnvironment(0, 3)),
                   "--experts 256 is not a multiple of the 3 ranks (every rank holds as many experts)");
}

TEST(ToolPerfCli, UnwritableJsonIsRefusedBeforeTheRun) {
  // A valid rank environment: without the check the next step would be cudaSetDevice.
  const std::string missing = "/nonexistent-nccl-moe-dir/out.json";
  expectUsageError(perf({"--json", missing}, rankEnvironment(0, 1)),
                   "--json: cannot write '" + missing + "': No such file or directory");
  // The other ranks check the path too, so that they stop with rank 0.
  expectUsageError(perf({"--json", missing}, rankEnvironment(1, 2)),
                   "--json: cannot write '" + missing + "': No such file or directory");
  expectUsageError(perf({"--json", "/"}, rankEnvironment(0, 1)), "--json: cannot write '/': Is a directory");
}

TEST(ToolPerfCli, HelpListsEveryFlagWithItsRangeAndDefault) {
  const ToolRun run = perf({"--help"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out.rfind("usage: nccl-moe-run -np R [--mps] nccl-moe-perf [flags]\n", 0), 0u) << run.out;
  const std::pair<const char*, const char*> lines[] = {
      {"-b N", "smallest tokens per rank, in [1, 1M], K/M/G suffixes (default 128)"},
      {"-e N", "largest tokens per rank, at least -b, in [1, 1M], K/M/G suffixes (default 4096)"},
      {"-f N", "tokens multiplied by N each step, at least 2 when -b < -e, in [1, 1024] (default 2)"},
      {"-n N", "timed iterations, in [1, 1000000] (default 20)"},
      {"-w N", "warm-up iterations, in [0, 1000000] (default 5)"},
      {"-c N", "1: check every rank's dispatch rows and combine output against the CPU reference (#wrong), 0: do not "
               "(#wrong N/A), in [0, 1] (default 1)"},
      {"-d TYPE", "type of the token rows and of combine, one of bf16, fp32 (default bf16)"},
      {"--experts N", "experts in all, a multiple of the ranks, in [1, 65536] (default 256)"},
      {"--topk N", "experts per token, at most --experts, in [1, 1024] (default 8)"},
      {"--hidden N", "elements per token row, in [1, 65536] (default 7168)"},
      {"--fp8", "FP8 dispatch (rows of -d TYPE otherwise)"},
      {"--expert-major", "HybridEP layout (no all-to-all-v baseline)"},
      {"--zero-copy", "x and the expert outputs written into the communicator's input areas beforehand"},
      {"--sms N", "SM budget of dispatch and of combine, in [1, 1024] (default 24)"},
      {"--seed N", "seed of the routings, in [0, 9223372036854775807] (default 1)"},
      {"--json FILE", "also write the table as JSON to FILE (by rank 0)"},
      {"-h, --help", "print this help"},
      {"--version", "print the version"}};
  for (const auto& [label, description] : lines) EXPECT_EQ(helpFor(run.out, label), description) << run.out;
}

TEST(ToolPerfCli, CheckFlagTakesZeroOrOne) {
  expectUsageError(perf({"-c", "2"}), "-c: '2' is out of range, want [0, 1]");
  expectUsageError(perf({"-c", "on"}), "-c: 'on' is not an integer");
  expectFlagsAccepted({"-c", "0"});
  expectFlagsAccepted({"-c", "1", "-d", "fp32"});
  expectUsageError(perf({"-d", "fp8"}), "-d: 'fp8' is not one of bf16, fp32");
}

TEST(ToolPerfCli, LowLatencyFlagsAreCheckedBeforeAnyGpuWork) {
  expectUsageError(perf({"--low-latency", "-e", "64"}),
                   "-e sets the high-throughput sweep; with --low-latency the token counts are --tokens LIST");
  expectUsageError(perf({"--low-latency", "--tokens", "1,8,4"}), "--tokens: 4 after 8: the token counts must increase");
  expectUsageError(perf({"--low-latency", "--tokens", "2048"}), "--tokens: '2048' is out of range, want [1, 1024]");
  expectUsageError(perf({"--tokens", "8"}), "--tokens is a --low-latency flag");
  expectUsageError(perf({"--low-latency", "--zero-copy"}),
                   "--zero-copy does not apply to --low-latency (its dispatch types are --ll-dispatch; its rows are "
                   "bf16 in the LL layout)");
  expectUsageError(perf({"--low-latency", "--tokens", "64", "--ll-max-tokens", "32"}),
                   "--ll-max-tokens 32 is less than the largest of --tokens, 64");
  expectFlagsAccepted({"--low-latency", "--tokens", "1,8", "--ll-dispatch", "fp8-pow2", "-n", "100"});
  const ToolRun help = perf({"--help"});
  EXPECT_EQ(helpFor(help.out, "--ll-dispatch TYPE"),
            "--low-latency: dispatch types, one communicator each (both: bf16 and fp8), one of both, bf16, fp8, "
            "fp8-pow2 (default both)");
  EXPECT_EQ(helpFor(help.out, "--ll-max-tokens N"),
            "--low-latency: lowLatencyMaxTokens N of the communicators, at least the largest of --tokens (0: that "
            "largest), in [0, 1024] (default 0)");
}

// Two ranks of a one-GPU virtual cluster: every element checked, the table, the summary lines and
// the JSON.
TEST(ToolPerfGpu, TwoRanksCheckedWithJson) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  char dir[] = "/tmp/nccl-moe-perf-gpu-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string json = std::string(dir) + "/out.json";
  const ToolRun run = runTool(kNcclMoeRunPath, {{"-np", "2", "--timeout", "300", kNcclMoePerfPath, "-b", "64", "-e",
                                                 "128", "--experts", "16", "--topk", "4", "--hidden", "512", "-n", "3",
                                                 "-w", "1", "--json", json},
                                                {},
                                                ""});
  EXPECT_EQ(run.status, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("# Avg bus bandwidth    : "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("# #wrong elements      : 0 OK"), std::string::npos) << run.out;
  std::ifstream file(json);
  std::stringstream text;
  text << file.rdbuf();
  EXPECT_NE(text.str().find("\"wrong_total\": 0"), std::string::npos) << text.str();
  std::filesystem::remove_all(dir);
}

// --low-latency on two ranks: both dispatch types and the combine checked bit for bit, the JSON.
TEST(ToolPerfGpu, LowLatencyTwoRanksCheckedWithJson) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  char dir[] = "/tmp/nccl-moe-perf-ll-gpu-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string json = std::string(dir) + "/ll.json";
  const ToolRun run = runTool(kNcclMoeRunPath, {{"-np", "2", "--timeout", "300", kNcclMoePerfPath, "--low-latency",
                                                 "--tokens", "1,8,32", "--experts", "16", "--topk", "4", "--hidden",
                                                 "512", "-n", "20", "-w", "2", "--json", json},
                                                {},
                                                ""});
  EXPECT_EQ(run.status, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("# #wrong elements      : 0 OK"), std::string::npos) << run.out;
  std::ifstream file(json);
  std::stringstream text;
  text << file.rdbuf();
  EXPECT_NE(text.str().find("\"mode\": \"low-latency\""), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("\"wrong_total\": 0"), std::string::npos) << text.str();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace nccl_moe::tools
