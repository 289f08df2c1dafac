// SLURM's compressed task and host lists.
#include <gtest/gtest.h>

#include "fake_environment.h"
#include "tools/bootstrap/slurm_lists.h"

namespace nccl_moe::bootstrap {
namespace {

TEST(BootstrapSlurmLists, TasksPerNodeExpandsRepeats) {
  EXPECT_EQ(expandTasksPerNode("V", "4"), (std::vector<int>{4}));
  EXPECT_EQ(expandTasksPerNode("V", "2(x3),1"), (std::vector<int>{2, 2, 2, 1}));
  EXPECT_EQ(expandTasksPerNode("V", "1,8(x2),3"), (std::vector<int>{1, 8, 8, 3}));
}

TEST(BootstrapSlurmLists, MalformedTasksPerNodeNamesTheEntry) {
  const std::string tail = " (entries are N or N(xM))";
  for (const char* text : {"2(x3", "2(3)", "(x3)", "0", "2,,1", "a", "2(x0)", "2,"}) {
    const std::string error = bootstrapErrorOf([&] { expandTasksPerNode("SLURM_TASKS_PER_NODE", text); });
    EXPECT_NE(error.find("cannot read the entry '"), std::string::npos) << text << ": " << error;
    EXPECT_NE(error.find(std::string("of SLURM_TASKS_PER_NODE='") + text + "'" + tail), std::string::npos)
        << text << ": " << error;
  }
  EXPECT_EQ(bootstrapErrorOf([] { expandTasksPerNode("SLURM_TASKS_PER_NODE", "2(x3"); }),
            "cannot read the entry '2(x3' of SLURM_TASKS_PER_NODE='2(x3'" + tail);
}

TEST(BootstrapSlurmLists, FirstHostOfANodeList) {
  EXPECT_EQ(firstHostOf("V", "node7"), "node7");
  EXPECT_EQ(firstHostOf("V", "gpu[07-10,12],login1"), "gpu07");
  EXPECT_EQ(firstHostOf("V", "a[3,5]"), "a3");
  EXPECT_EQ(firstHostOf("V", "rack[2-3]-n[01-04]"), "rack2-n01");
  EXPECT_EQ(firstHostOf("V", "h1,h2"), "h1");
}

TEST(BootstrapSlurmLists, MalformedNodeListIsNamed) {
  EXPECT_EQ(bootstrapErrorOf([] { firstHostOf("SLURM_JOB_NODELIST", "gpu[01-04"); }),
            "SLURM_JOB_NODELIST='gpu[01-04' has a '[' without ']'");
  EXPECT_EQ(bootstrapErrorOf([] { firstHostOf("SLURM_JOB_NODELIST", ",h2"); }),
            "SLURM_JOB_NODELIST=',h2' names no host");
}

}  // namespace
}  // namespace nccl_moe::bootstrap
