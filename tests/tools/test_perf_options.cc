// nccl-moe-perf's flags (tools/perf/options.h): -b/-e with K/M suffixes and the token counts they
// sweep, -c, -d, and the help that defines the columns.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "perf_options_parse.h"
#include "tool_run.h"
#include "tools/perf/options.h"

namespace nccl_moe::perf {
namespace {

using test::parsed;
using test::usageErrorOf;

TEST(PerfOptions, SuffixesAreBinaryTokensPerRank) {
  const Options o = parsed({"-b", "1K", "-e", "4K"});
  EXPECT_EQ(o.minTokens, 1024);
  EXPECT_EQ(o.maxTokens, 4096);
  EXPECT_EQ(tokenSweep(o), (std::vector<int>{1024, 2048, 4096}));
  EXPECT_EQ(parsed({"-b", "1k", "-e", "1M"}).maxTokens, 1 << 20);
  EXPECT_EQ(usageErrorOf({"-e", "2M"}), "-e: '2M' is out of range, want [1, 1M]");
  EXPECT_EQ(usageErrorOf({"-b", "1.5K"}), "-b: '1.5K' is not a count (digits, optionally followed by K, M or G)");
}

TEST(PerfOptions, TheSweepStopsAtTheLastCountWithinTheEnd) {
  EXPECT_EQ(tokenSweep(parsed({"-b", "100", "-e", "1000", "-f", "4"})), (std::vector<int>{100, 400}));
  EXPECT_EQ(tokenSweep(parsed({"-b", "128", "-e", "4096"})), (std::vector<int>{128, 256, 512, 1024, 2048, 4096}));
  // -b == -e is one count, whatever -f (1 included: it never loops).
  EXPECT_EQ(tokenSweep(parsed({"-b", "256", "-e", "256", "-f", "1"})), (std::vector<int>{256}));
  // The largest counts do not overflow.
  EXPECT_EQ(tokenSweep(parsed({"-b", "512K", "-e", "1M", "-f", "1024"})), (std::vector<int>{512 << 10}));
}

TEST(PerfOptions, CheckIsOnByDefaultAndTakesZeroOrOne) {
  EXPECT_EQ(parsed({}).check, 1);
  EXPECT_EQ(parsed({"-c", "0"}).check, 0);
  EXPECT_EQ(parsed({"-c", "1"}).check, 1);
  EXPECT_EQ(usageErrorOf({"-c", "2"}), "-c: '2' is out of range, want [0, 1]");
  EXPECT_EQ(usageErrorOf({"-c", "yes"}), "-c: 'yes' is not an integer");
  EXPECT_EQ(usageErrorOf({"-c"}), "-c needs a value (N)");
}

TEST(PerfOptions, TypeIsBf16OrFp32) {
  EXPECT_FALSE(parsed({}).fp32());
  EXPECT_TRUE(parsed({"-d", "fp32"}).fp32());
  EXPECT_EQ(usageErrorOf({"-d", "fp16"}), "-d: 'fp16' is not one of bf16, fp32");
}

TEST(PerfOptions, HelpDefinesTheColumnsAndBusbw) {
  const char* arguments[] = {"nccl-moe-perf", "--help"};
  Options o;
  std::ostringstream out;
  EXPECT_EQ(parseOptions(2, arguments, &o, out), tools::ParseOutcome::kAnswered);
  const std::string help = out.str();
  EXPECT_NE(help.find("busbw    the bytes of those rows that cross between ranks / time"), std::string::npos) << help;
  EXPECT_NE(help.find("algbw    size / time in GB/s (1e9 B/s)"), std::string::npos) << help;
  EXPECT_NE(help.find("-b 1K -e 4K runs 1024, 2048 and 4096"), std::string::npos) << help;
  EXPECT_EQ(tools::helpFor(help, "-c N"),
            "1: check every rank's dispatch rows and combine output against the CPU reference (#wrong), 0: do not "
            "(#wrong N/A), in [0, 1] (default 1)");
  EXPECT_EQ(tools::helpFor(help, "-d TYPE"), "type of the token rows and of combine, one of bf16, fp32 (default bf16)");
}

}  // namespace
}  // namespace nccl_moe::perf
