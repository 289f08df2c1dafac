// nccl-moe-demo as users start it: bad flags and runs too large for host memory end with exit
// status 2 and a message, an allocation that fails anyway with exit status 1 and a message (not
// an uncaught std::bad_alloc), and a small run passes its check. These run the CPU reference (no
// GPU visible: CUDA_VISIBLE_DEVICES is empty), on any machine; the ToolDemoGpu cases run the
// library on a GPU and skip without one.
#include <gtest/gtest.h>

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

// No GPU visible, whatever the machine has: the reference path.
ToolRun demo(std::vector<std::string> arguments, const std::string& shellPrefix = "") {
  return runTool(kNcclMoeDemoPath, {std::move(arguments), {"CUDA_VISIBLE_DEVICES="}, shellPrefix});
}

void expectUsageError(const ToolRun& run, const std::string& message) {
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_EQ(run.err, "nccl-moe-demo: " + message + "\n");
  EXPECT_EQ(run.out, "");
}

TEST(ToolDemoCli, SmallRunPasses) {
  const ToolRun run =
      demo({"--tokens", "64", "--hidden", "256", "--skew", "0.5", "--layout=expert-major", "--pad", "4"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find(": PASSED"), std::string::npos) << run.out;
}

TEST(ToolDemoCli, WithoutAGpuTheReferenceRunsAndSaysSo) {
  const ToolRun run = demo({"--tokens", "16", "--hidden", "128"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find("\n# no GPU (cudaGetDeviceCount: "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("the CPU reference alone runs; the library's GPU path is not exercised\n"), std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find(": PASSED"), std::string::npos) << run.out;
}

TEST(ToolDemoCli, CpuFlagRunsTheReferenceAndSaysSo) {
  const ToolRun run = demo({"--cpu", "--tokens", "16", "--hidden", "128", "--fp8"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find("\n# --cpu: the CPU reference alone runs"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find(": PASSED"), std::string::npos) << run.out;
}

TEST(ToolDemoCli, HugeRunIsRefusedWithTheProductAndTheLimit) {
  // 8 ranks x 1M tokens: rows of x and of the output (2 TiB), 4 dispatched and expert rows per token (8 TiB).
  expectUsageError(demo({"--hidden", "65536", "--tokens", "1048576"}),
                   "--ranks 8 x --tokens 1048576 x --hidden 65536 with --topk 4 needs about 10.00 TiB of host "
                   "memory, over the limit of 16.00 GiB (lower them, or raise the limit with --max-memory)");
}

TEST(ToolDemoCli, MaxMemorySetsTheLimit) {
  const ToolRun refused = demo({"--max-memory", "1M"});
  EXPECT_EQ(refused.status, 2);
  EXPECT_NE(refused.err.find("over the limit of 1.00 MiB"), std::string::npos) << refused.err;
  expectUsageError(demo({"--max-memory", "1K"}),
                   "--max-memory: '1K' is out of range, want [1M, 1048576G]");
}

TEST(ToolDemoCli, AllocationFailureIsReportedNotAborted) {
  // The limit raised past the estimate (10 TiB) and the address space capped: rank 0's first
  // 128 GiB of rows fail.
  const ToolRun run = demo({"--hidden", "65536", "--tokens", "1M", "--max-memory", "16384G"}, "ulimit -v 4000000;");
  EXPECT_EQ(run.status, 1) << run.err;
  EXPECT_EQ(run.err,
            "nccl-moe-demo: out of host memory (an allocation failed); lower --ranks, --tokens, --topk or --hidden\n");
}

TEST(ToolDemoCli, EachFlagIsChecked) {
  expectUsageError(demo({"--ranks", "0"}), "--ranks: '0' is out of range, want [1, 4096]");
  expectUsageError(demo({"--tokens", "-1"}), "--tokens: '-1' is out of range, want [0, 1M]");
  expectUsageError(demo({"--tokens", "99999999999999999999"}),
                   "--tokens: '99999999999999999999' is out of range, want [0, 1M]");
  expectUsageError(demo({"--hidden", "abc"}), "--hidden: 'abc' is not an integer");
  expectUsageError(demo({"--skew", "nan"}), "--skew: 'nan' is not a finite number");
  expectUsageError(demo({"--skew", "-1"}), "--skew: '-1' is out of range, want [0, 100]");
  expectUsageError(demo({"--layout", "foo"}), "--layout: 'foo' is not one of per-rank, expert-major");
  expectUsageError(demo({"--seed", "-1"}), "--seed: '-1' is out of range, want [0, 9223372036854775807]");
  expectUsageError(demo({"--iters", "0"}), "--iters: '0' is out of range, want [1, 1000000]");
  expectUsageError(demo({"--cpu=1"}), "--cpu takes no value");
}

TEST(ToolDemoCli, MissingValuesAreNamed) {
  expectUsageError(demo({"--skew"}), "--skew needs a value (X)");
  expectUsageError(demo({"--layout"}), "--layout needs a value (LAYOUT)");
}

TEST(ToolDemoCli, FlagsAreCheckedAgainstEachOther) {
  expectUsageError(demo({"--experts", "30"}),
                   "--experts 30 is not a multiple of --ranks 8 (every rank holds as many experts)");
  expectUsageError(demo({"--experts", "32", "--topk", "64"}),
                   "--topk 64 is more than --experts 32 (a token picks distinct experts)");
  expectUsageError(demo({"--pad", "4"}), "--pad needs --layout expert-major");
}

TEST(ToolDemoCli, HelpListsEveryFlagWithItsRangeAndDefault) {
  const ToolRun run = demo({"--help"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out.rfind("usage: nccl-moe-demo [flags]   (on GPUs: nccl-moe-run -np R nccl-moe-demo [flags])\n", 0),
            0u)
      << run.out;
  const std::pair<const char*, const char*> lines[] = {
      {"--ranks N", "ranks of the EP group on the CPU reference (on GPUs: the launched ranks), in [1, 4096] (default 8)"},
      {"--experts N", "experts in all, a multiple of the ranks, in [1, 65536] (default 32)"},
      {"--topk N", "experts per token, at most --experts, in [1, 1024] (default 4)"},
      {"--tokens N", "tokens per rank, in [0, 1M], K/M/G suffixes (default 512)"},
      {"--hidden N", "elements per token row, in [1, 65536] (default 1024)"},
      {"--skew X", "routing skew S: expert e drawn with weight 1/(e+1)^S, 0 uniform, in [0, 100] (default 0)"},
      {"--layout LAYOUT", "layout of the received rows, one of per-rank, expert-major (default per-rank)"},
      {"--pad N", "expert-major: each expert's rows padded to a multiple of N, in [0, 65536] (default 0)"},
      {"--fp8", "FP8 E4M3 dispatch (bf16 otherwise)"},
      {"--seed N", "seed of the routing and the data, in [0, 9223372036854775807] (default 1)"},
      {"--max-memory N", "host bytes the run may take, in [1M, 1048576G], K/M/G suffixes (default 16G)"},
      {"--cpu", "the CPU reference alone, even where a GPU is present"},
      {"--iters N", "on GPUs: timed calls of each step, in [1, 1000000] (default 10)"},
      {"-h, --help", "print this help"},
      {"--version", "print the version"}};
  for (const auto& [label, description] : lines) EXPECT_EQ(helpFor(run.out, label), description) << run.out;
}

// The library on the GPU, as one process alone: a group of one rank, checked bit for bit.
TEST(ToolDemoGpu, OneProcessIsAGroupOfOneRank) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  const ToolRun run = runTool(kNcclMoeDemoPath, {{"--tokens", "64", "--hidden", "256", "--iters", "3"}, {}, ""});
  EXPECT_EQ(run.status, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("EP group of 1 rank (none (one process))"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("# GPU outputs against the CPU reference, bit for bit: 0 values differ: PASSED"),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find(": PASSED\n"), std::string::npos) << run.out;
}

// Four ranks of a one-GPU virtual cluster, FP8 and the expert-major layout with padding.
TEST(ToolDemoGpu, VirtualClusterOfFourRanks) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  const ToolRun run = runTool(kNcclMoeRunPath, {{"-np", "4", "--timeout", "300", kNcclMoeDemoPath, "--tokens", "48",
                                                 "--hidden", "384", "--fp8", "--layout", "expert-major", "--pad", "8",
                                                 "--iters", "3"},
                                                {},
                                                ""});
  EXPECT_EQ(run.status, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("EP group of 4 ranks (nccl-moe-run)"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("bit for bit: 0 values differ: PASSED"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace nccl_moe::tools
