// Where the TCP id store runs, its timeout and the job it serves; and the GPU a rank chooses.
#include <gtest/gtest.h>

#include "fake_environment.h"
#include "tools/bootstrap/device.h"
#include "tools/bootstrap/store_settings.h"

namespace nccl_moe::bootstrap {
namespace {

const RankLayout kOneHost{Launcher::kTorchrun, 1, 4, 1, 4};
const RankLayout kTwoHosts{Launcher::kOpenMpi, 5, 8, 1, 4};
const RankLayout kSlurmTwoHosts{Launcher::kSlurm, 5, 8, 1, 4};

StoreSettings settingsOf(const RankLayout& layout, const FakeEnvironment& env) {
  return readStoreSettings(layout, env.lookup());
}

TEST(BootstrapStoreSettings, OneHostNeedsNoAddress) {
  const StoreSettings settings = settingsOf(kOneHost, {});
  EXPECT_EQ(settings.host, "127.0.0.1");
  EXPECT_EQ(settings.port, kDefaultStorePort);
}

TEST(BootstrapStoreSettings, OwnVariablesWinOverMasterAddrAndPort) {
  FakeEnvironment env{{{"MASTER_ADDR", "node0"}, {"MASTER_PORT", "1234"}}};
  StoreSettings settings = settingsOf(kTwoHosts, env);
  EXPECT_EQ(settings.host, "node0");
  EXPECT_EQ(settings.port, 1234);
  env.variables["NCCL_MOE_BOOTSTRAP_ADDR"] = "10.0.0.7";
  env.variables["NCCL_MOE_BOOTSTRAP_PORT"] = "4321";
  settings = settingsOf(kTwoHosts, env);
  EXPECT_EQ(settings.host, "10.0.0.7");
  EXPECT_EQ(settings.port, 4321);
}

TEST(BootstrapStoreSettings, TorchrunsAgentStoreKeepsMasterPortSoTheNextOneIsTaken) {
  const FakeEnvironment env{
      {{"MASTER_ADDR", "node0"}, {"MASTER_PORT", "29500"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}}};
  EXPECT_EQ(settingsOf(kOneHost, env).port, 29501);
}

TEST(BootstrapStoreSettings, SlurmDerivesRankZerosHostFromTheNodeList) {
  FakeEnvironment env{{{"SLURM_JOB_NODELIST", "gpu[03-04]"}}};
  EXPECT_EQ(settingsOf(kSlurmTwoHosts, env).host, "gpu03");
  env.variables["SLURM_STEP_NODELIST"] = "gpu[04]";
  EXPECT_EQ(settingsOf(kSlurmTwoHosts, env).host, "gpu04");
  env.variables["MASTER_ADDR"] = "head";
  EXPECT_EQ(settingsOf(kSlurmTwoHosts, env).host, "head");
}

TEST(BootstrapStoreSettings, SeveralHostsWithoutAnAddressSayWhatToSet) {
  EXPECT_EQ(bootstrapErrorOf([] { settingsOf(kTwoHosts, {}); }),
            "the 8 ranks span several hosts (4 on this one, Open MPI) and no variable names rank 0's: set "
            "MASTER_ADDR (or NCCL_MOE_BOOTSTRAP_ADDR) to rank 0's host name or address");
}

TEST(BootstrapStoreSettings, MalformedValuesAreNamed) {
  EXPECT_EQ(bootstrapErrorOf([] { settingsOf(kOneHost, {{{"MASTER_PORT", "70000"}}}); }),
            "MASTER_PORT='70000' is not an integer in [1, 65535]");
  EXPECT_EQ(bootstrapErrorOf([] { settingsOf(kOneHost, {{{"NCCL_MOE_BOOTSTRAP_PORT", "http"}}}); }),
            "NCCL_MOE_BOOTSTRAP_PORT='http' is not an integer in [1, 65535]");
  EXPECT_EQ(bootstrapErrorOf([] { settingsOf(kOneHost, {{{"MASTER_ADDR", ""}}}); }), "MASTER_ADDR is set but empty");
  EXPECT_EQ(bootstrapErrorOf([] { readBootstrapTimeout(FakeEnvironment{{{"NCCL_MOE_BOOTSTRAP_TIMEOUT", "0"}}}.lookup()); }),
            "NCCL_MOE_BOOTSTRAP_TIMEOUT='0' is not an integer in [1, 604800]");
}

TEST(BootstrapStoreSettings, TimeoutDefaultsToFiveMinutes) {
  EXPECT_EQ(readBootstrapTimeout(FakeEnvironment{}.lookup()), std::chrono::seconds(300));
  EXPECT_EQ(readBootstrapTimeout(FakeEnvironment{{{"NCCL_MOE_BOOTSTRAP_TIMEOUT", "7"}}}.lookup()),
            std::chrono::seconds(7));
}

TEST(BootstrapStoreSettings, JobNameComesFromTheLaunchersJobIds) {
  const FakeEnvironment env{
      {{"SLURM_JOB_ID", "77"}, {"SLURM_STEP_ID", "3"}, {"TORCHELASTIC_RUN_ID", "r1"}, {"MASTER_ADDR", "n0"}}};
  EXPECT_EQ(settingsOf(kSlurmTwoHosts, env).jobName, "SLURM_JOB_ID=77;SLURM_STEP_ID=3;");
  EXPECT_EQ(settingsOf(kOneHost, env).jobName, "TORCHELASTIC_RUN_ID=r1;");
  EXPECT_EQ(settingsOf(RankLayout{Launcher::kPmi, 0, 2, 0, 2}, env).jobName, "");
}

TEST(BootstrapDeviceChoice, LocalRankModuloVisibleDevices) {
  EXPECT_EQ(chooseDevice(RankLayout{Launcher::kOpenMpi, 5, 8, 1, 4}, FakeEnvironment{}.lookup(), 4), 1);
  EXPECT_EQ(chooseDevice(RankLayout{Launcher::kOpenMpi, 7, 8, 3, 4}, FakeEnvironment{}.lookup(), 2), 1);
  EXPECT_EQ(chooseDevice(RankLayout{Launcher::kSlurm, 7, 8, 3, 4}, FakeEnvironment{}.lookup(), 1), 0);
}

TEST(BootstrapDeviceChoice, TheLaunchersDeviceWins) {
  // nccl-moe-run gives each rank one visible GPU (or lets all share one) and says device 0.
  const FakeEnvironment env{{{"NCCL_MOE_DEVICE", "0"}}};
  EXPECT_EQ(chooseDevice(RankLayout{Launcher::kNcclMoeRun, 3, 4, 3, 4}, env.lookup(), 8), 0);
  EXPECT_EQ(bootstrapErrorOf([] {
              chooseDevice(RankLayout{}, FakeEnvironment{{{"NCCL_MOE_DEVICE", "2"}}}.lookup(), 2);
            }),
            "NCCL_MOE_DEVICE=2 is not below the 2 CUDA devices visible to rank 0");
}

TEST(BootstrapDeviceChoice, NoVisibleDeviceIsAnError) {
  EXPECT_EQ(bootstrapErrorOf([] { chooseDevice(RankLayout{}, FakeEnvironment{}.lookup(), 0); }),
            "rank 0: no CUDA device is visible");
}

}  // namespace
}  // namespace nccl_moe::bootstrap
