// nccl-moe-run on a real GPU: several ranks on one GPU form an NCCL communicator and all-reduce
// correctly, with and without MPS. Skipped without a GPU (CI).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include "executable_search.h"
#include "launcher_test_paths.h"
#include "machine_probes.h"

namespace nccl_moe::launcher {
namespace {

int runLauncher(const std::string& options) {
  const std::string command = std::string(kNcclMoeRunPath) + " " + options + " --timeout 120 " +
                              kNcclAllReduceProbePath;
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class LauncherGpu : public testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (countVisibleGpus() == 0) GTEST_SKIP() << "no GPU";
  }
};

TEST_P(LauncherGpu, RanksSharingOneGpuAllReduce) { EXPECT_EQ(runLauncher(GetParam()), 0); }

TEST_P(LauncherGpu, RanksSharingOneGpuAllReduceUnderMps) {
  const char* path = std::getenv("PATH");
  if (!findExecutable("nvidia-cuda-mps-control", path ? path : "")) {
    GTEST_SKIP() << "nvidia-cuda-mps-control not in PATH";
  }
  EXPECT_EQ(runLauncher(std::string(GetParam()) + " --mps"), 0);
}

INSTANTIATE_TEST_SUITE_P(VirtualClusters, LauncherGpu,
                         testing::Values("-np 2 --gpus 1", "-np 4 --gpus 1 --nodes 2",
                                         "-np 8 --gpus 1 --nodes 2"));

}  // namespace
}  // namespace nccl_moe::launcher
