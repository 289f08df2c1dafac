// nccl-moe-demo's host side (tools/demo/options.h, report.h): the group its flags are checked
// against on GPUs and on the CPU reference, the inputs every rank builds alike, the x * sum(p)
// check, and the GPU table.
#include <gtest/gtest.h>

#include <string>

#include "tools/demo/options.h"
#include "tools/demo/report.h"

namespace nccl_moe::demo {
namespace {

std::string usageErrorOf(const DemoOptions& o, int ranks, bool launched) {
  try {
    checkOptions(o, ranks, launched);
  } catch (const tools::UsageError& error) {
    return error.what();
  }
  return "";
}

TEST(DemoHost, OnGpusTheGroupIsTheLaunchedRanks) {
  DemoOptions o;  // --ranks 8 by default, not given
  EXPECT_EQ(usageErrorOf(o, 1, true), "");  // one process: a group of one rank
  EXPECT_EQ(usageErrorOf(o, 4, true), "");
  EXPECT_EQ(usageErrorOf(o, 3, true),
            "--experts 32 is not a multiple of the 3 launched ranks (every rank holds as many experts)");
  o.ranksGiven = true;
  EXPECT_EQ(usageErrorOf(o, 8, true), "");
  EXPECT_EQ(usageErrorOf(o, 1, true),
            "--ranks 8, but 1 rank runs: on GPUs the EP group is the processes a launcher starts (nccl-moe-run -np 8 "
            "nccl-moe-demo ...), or add --cpu for the CPU reference alone");
}

TEST(DemoHost, OnTheCpuTheGroupIsRanks) {
  DemoOptions o;
  o.experts = 30;
  EXPECT_EQ(usageErrorOf(o, 8, false), "--experts 30 is not a multiple of --ranks 8 (every rank holds as many experts)");
  o.experts = 32;
  o.ranksGiven = true;
  EXPECT_EQ(usageErrorOf(o, 8, false), "");
}

TEST(DemoHost, EveryRankBuildsTheSameInputs) {
  DemoOptions o;
  o.tokens = 8;
  o.hidden = 64;
  const harness::GroupInputs a = makeInputs(o, 4), b = makeInputs(o, 4);
  ASSERT_EQ(a.x.size(), 4u);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(a.x[r].bytes(), b.x[r].bytes());
    EXPECT_EQ(a.routings[r].topkIdx, b.routings[r].topkIdx);
  }
  EXPECT_NE(a.x[0].bytes(), a.x[1].bytes());
}

TEST(DemoHost, InputCheckFindsAWrongToken) {
  DemoOptions o;
  o.tokens = 4;
  o.hidden = 32;
  const harness::GroupInputs in = makeInputs(o, 2);
  harness::ReferenceLayer ref;
  ASSERT_TRUE(harness::runReferenceLayer(in, harness::LayerSettings{}, &ref).isOk());
  InputCheck good = checkAgainstInput(o, in.routings[0], in.x[0], ref.combined[0]);
  EXPECT_EQ(good.checked, 4 * 32);
  EXPECT_EQ(good.bad, 0);
  HostRows wrong = ref.combined[0];
  wrong.set(2, 5, wrong.get(2, 5) + 1.0f);
  const InputCheck bad = checkAgainstInput(o, in.routings[0], in.x[0], wrong);
  EXPECT_EQ(bad.bad, 1);
  EXPECT_GT(bad.worst, 1.0);
  good.add(bad);
  EXPECT_EQ(good.checked, 2 * 4 * 32);
  EXPECT_EQ(good.bad, 1);
  EXPECT_NE(inputCheckLine(bad).find("1 outside tolerance"), std::string::npos);
  EXPECT_NE(inputCheckLine(bad).find(": FAILED\n"), std::string::npos);
}

TEST(DemoHost, GpuTableHasAColumnPerDefinition) {
  const std::string table = gpuTable({{"layout", 12.5, std::nullopt, 9, 0}, {"dispatch", 40.0, 123.456, 1000, 2}});
  EXPECT_EQ(table,
            "# step            time  GB/s/rank      checked   #wrong\n"
            "#                 (us)                (values)         \n"
            "  layout         12.50          -            9        0\n"
            "  dispatch       40.00     123.46         1000        2\n");
  const std::string about = aboutText();
  for (const char* column : {"rows_sent", "rows_recv", "pad_rows", "dispatch_rx", "combine_rx", "experts", "step",
                             "time", "GB/s/rank", "checked", "#wrong"})
    EXPECT_NE(about.find("  " + std::string(column) + " "), std::string::npos) << column;
}

}  // namespace
}  // namespace nccl_moe::demo
