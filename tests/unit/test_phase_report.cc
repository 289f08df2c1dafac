// nccl-moe-perf's phase report: averages over the calls a phase ran in, one line in enum order.
#include <gtest/gtest.h>

#include "tools/perf/phase_report.h"

namespace nccl_moe::perf {
namespace {

ncclMoePhaseTimes_t noPhases() {
  ncclMoePhaseTimes_t times = NCCL_MOE_PHASE_TIMES_INITIALIZER;
  for (int p = 0; p < ncclMoeNumPhases; ++p) times.startUs[p] = times.endUs[p] = -1.0f;
  return times;
}

TEST(PhaseReport, AveragesOnlyTheCallsAPhaseRanIn) {
  PhaseAverage average;
  ncclMoePhaseTimes_t first = noPhases(), second = noPhases();
  first.startUs[ncclMoePhaseDispatchNvlink] = 1.0f;
  first.endUs[ncclMoePhaseDispatchNvlink] = 11.0f;
  second.startUs[ncclMoePhaseDispatchNvlink] = 3.0f;
  second.endUs[ncclMoePhaseDispatchNvlink] = 21.0f;
  second.startUs[ncclMoePhaseDispatchNetwork] = 2.0f;
  second.endUs[ncclMoePhaseDispatchNetwork] = 8.0f;
  average.add(first);
  average.add(second);
  EXPECT_DOUBLE_EQ(average.startUs(ncclMoePhaseDispatchNvlink), 2.0);
  EXPECT_DOUBLE_EQ(average.endUs(ncclMoePhaseDispatchNvlink), 16.0);
  EXPECT_DOUBLE_EQ(average.startUs(ncclMoePhaseDispatchNetwork), 2.0);  // one call only
  EXPECT_DOUBLE_EQ(average.endUs(ncclMoePhaseDispatchNetwork), 8.0);
  EXPECT_FALSE(average.ran(ncclMoePhaseCombineReduce));
  EXPECT_DOUBLE_EQ(average.startUs(ncclMoePhaseCombineReduce), -1.0);
}

TEST(PhaseReport, DescribesThePhasesThatRanInEnumOrder) {
  PhaseAverage average;
  ncclMoePhaseTimes_t times = noPhases();
  times.startUs[ncclMoePhaseCombineReduce] = 40.0f;
  times.endUs[ncclMoePhaseCombineReduce] = 52.3f;
  times.startUs[ncclMoePhaseLayoutPublish] = 0.0f;
  times.endUs[ncclMoePhaseLayoutPublish] = 5.0f;
  average.add(times);
  EXPECT_EQ(describePhases([&](int p) { return average.startUs(p); }, [&](int p) { return average.endUs(p); }),
            "layout.publish 0.0-5.0 | combine.reduce 40.0-52.3");
  PhaseAverage none;
  EXPECT_EQ(describePhases([&](int p) { return none.startUs(p); }, [&](int p) { return none.endUs(p); }), "");
}

}  // namespace
}  // namespace nccl_moe::perf
