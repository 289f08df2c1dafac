// The rank layout from each launcher's variables, their order of precedence, and the refusal of
// missing, malformed and inconsistent values with the variable named.
#include <gtest/gtest.h>

#include <algorithm>

#include "fake_environment.h"
#include "tools/bootstrap/rank_layout.h"

namespace nccl_moe::bootstrap {
namespace {

struct Expected {
  Launcher launcher;
  int rank, size, localRank, localSize;
};

void expectLayout(const FakeEnvironment& env, const Expected& want) {
  const RankLayout layout = readRankLayout(env.lookup());
  EXPECT_EQ(layout.launcher, want.launcher) << launcherName(layout.launcher);
  EXPECT_EQ(layout.rank, want.rank);
  EXPECT_EQ(layout.size, want.size);
  EXPECT_EQ(layout.localRank, want.localRank);
  EXPECT_EQ(layout.localSize, want.localSize);
}

std::string errorOf(const FakeEnvironment& env) {
  return bootstrapErrorOf([&] { readRankLayout(env.lookup()); });
}

const FakeEnvironment kNcclMoeRun{{{"NCCL_MOE_RANK", "5"},
                                   {"NCCL_MOE_NRANKS", "8"},
                                   {"NCCL_MOE_LOCAL_RANK", "1"},
                                   {"NCCL_MOE_DOMAIN_SIZE", "4"}}};
const FakeEnvironment kTorchrun{
    {{"RANK", "6"}, {"WORLD_SIZE", "16"}, {"LOCAL_RANK", "6"}, {"LOCAL_WORLD_SIZE", "8"}}};
const FakeEnvironment kOpenMpi{{{"OMPI_COMM_WORLD_RANK", "3"},
                                {"OMPI_COMM_WORLD_SIZE", "4"},
                                {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}}};
const FakeEnvironment kHydra{{{"PMI_RANK", "9"}, {"PMI_SIZE", "12"}, {"MPI_LOCALRANKID", "1"}, {"MPI_LOCALNRANKS", "4"}}};
const FakeEnvironment kSlurm{{{"SLURM_PROCID", "5"},
                              {"SLURM_NTASKS", "6"},
                              {"SLURM_LOCALID", "0"},
                              {"SLURM_NODEID", "2"},
                              {"SLURM_TASKS_PER_NODE", "2(x2),1,1"}}};

TEST(BootstrapRankLayout, NoLauncherIsOneProcessAlone) { expectLayout(FakeEnvironment{}, {Launcher::kNone, 0, 1, 0, 1}); }

TEST(BootstrapRankLayout, NcclMoeRun) { expectLayout(kNcclMoeRun, {Launcher::kNcclMoeRun, 5, 8, 1, 4}); }

TEST(BootstrapRankLayout, Torchrun) { expectLayout(kTorchrun, {Launcher::kTorchrun, 6, 16, 6, 8}); }

TEST(BootstrapRankLayout, OpenMpi) { expectLayout(kOpenMpi, {Launcher::kOpenMpi, 3, 4, 1, 2}); }

TEST(BootstrapRankLayout, MpichHydra) { expectLayout(kHydra, {Launcher::kPmi, 9, 12, 1, 4}); }

TEST(BootstrapRankLayout, SlurmTasksPerNodeList) { expectLayout(kSlurm, {Launcher::kSlurm, 5, 6, 0, 1}); }

TEST(BootstrapRankLayout, SlurmStepValuesWinOverTheAllocations) {
  FakeEnvironment env = kSlurm;
  env.variables["SLURM_NTASKS"] = "64";  // the allocation; this step runs 6
  env.variables["SLURM_STEP_NUM_TASKS"] = "6";
  env.variables["SLURM_STEP_TASKS_PER_NODE"] = "3,2,1";
  expectLayout(env, {Launcher::kSlurm, 5, 6, 0, 1});
  env.variables["SLURM_NODEID"] = "0";
  env.variables["SLURM_LOCALID"] = "2";
  env.variables["SLURM_PROCID"] = "2";
  expectLayout(env, {Launcher::kSlurm, 2, 6, 2, 3});
}

TEST(BootstrapRankLayout, SlurmNtasksPerNodeWhenNoListIsSet) {
  FakeEnvironment env = kSlurm;
  env.variables.erase("SLURM_TASKS_PER_NODE");
  env.variables["SLURM_NTASKS_PER_NODE"] = "2";
  expectLayout(env, {Launcher::kSlurm, 5, 6, 0, 2});
}

TEST(BootstrapRankLayout, PrecedenceFollowsTheDocumentedOrder) {
  FakeEnvironment env;
  for (const FakeEnvironment* part : {&kSlurm, &kHydra, &kOpenMpi, &kTorchrun, &kNcclMoeRun}) {
    env.variables.insert(part->variables.begin(), part->variables.end());
  }
  expectLayout(env, {Launcher::kNcclMoeRun, 5, 8, 1, 4});
  for (const char* name : {"NCCL_MOE_RANK", "NCCL_MOE_NRANKS", "NCCL_MOE_LOCAL_RANK", "NCCL_MOE_DOMAIN_SIZE"}) {
    env.variables.erase(name);
  }
  expectLayout(env, {Launcher::kTorchrun, 6, 16, 6, 8});  // torchrun inside an srun step
  for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"}) env.variables.erase(name);
  expectLayout(env, {Launcher::kOpenMpi, 3, 4, 1, 2});
  env.variables.erase("OMPI_COMM_WORLD_RANK");
  expectLayout(env, {Launcher::kPmi, 9, 12, 1, 4});
  env.variables.erase("PMI_RANK");
  expectLayout(env, {Launcher::kSlurm, 5, 6, 0, 1});
}

TEST(BootstrapRankLayout, PmiWithoutHydrasLocalVariablesDefersToSlurm) {
  FakeEnvironment env = kSlurm;  // srun --mpi=pmi2 sets PMI_RANK and PMI_SIZE alone
  env.variables["PMI_RANK"] = "5";
  env.variables["PMI_SIZE"] = "6";
  expectLayout(env, {Launcher::kSlurm, 5, 6, 0, 1});
  env.variables.erase("SLURM_PROCID");  // nobody else knows the local rank: say which is missing
  EXPECT_EQ(errorOf(env), "MPI_LOCALRANKID is not set, but PMI_RANK is (MPICH/PMI sets both)");
}

TEST(BootstrapRankLayout, MissingCompanionVariableIsNamed) {
  FakeEnvironment env = kTorchrun;
  env.variables.erase("LOCAL_WORLD_SIZE");
  EXPECT_EQ(errorOf(env), "LOCAL_WORLD_SIZE is not set, but RANK is (torchrun sets both)");
  env = kNcclMoeRun;
  env.variables.erase("NCCL_MOE_NRANKS");
  EXPECT_EQ(errorOf(env), "NCCL_MOE_NRANKS is not set, but NCCL_MOE_RANK is (nccl-moe-run sets both)");
  env = kSlurm;
  env.variables.erase("SLURM_NODEID");
  EXPECT_EQ(errorOf(env), "SLURM_NODEID is not set, but SLURM_TASKS_PER_NODE is (srun sets both)");
  env = kSlurm;
  env.variables.erase("SLURM_TASKS_PER_NODE");
  EXPECT_EQ(errorOf(env),
            "SLURM_PROCID is set, but none of SLURM_STEP_TASKS_PER_NODE, SLURM_TASKS_PER_NODE, "
            "SLURM_NTASKS_PER_NODE is (start the ranks with srun)");
}

TEST(BootstrapRankLayout, MalformedNumbersAreRefusedWithTheVariable) {
  struct Case {
    const FakeEnvironment& base;
    const char* name;
    const char* value;
    const char* lowest;
  };
  const Case cases[] = {{kNcclMoeRun, "NCCL_MOE_RANK", "five", "0"},  {kTorchrun, "WORLD_SIZE", "0", "1"},
                        {kTorchrun, "RANK", "-1", "0"},                {kTorchrun, "LOCAL_RANK", " 6", "0"},
                        {kOpenMpi, "OMPI_COMM_WORLD_SIZE", "4x", "1"}, {kHydra, "MPI_LOCALNRANKS", "", "1"},
                        {kSlurm, "SLURM_PROCID", "99999999999", "0"},  {kSlurm, "SLURM_NTASKS", "0x6", "1"}};
  for (const Case& c : cases) {
    FakeEnvironment env = c.base;
    env.variables[c.name] = c.value;
    EXPECT_EQ(errorOf(env), std::string(c.name) + "='" + c.value + "' is not an integer >= " + c.lowest);
  }
}

TEST(BootstrapRankLayout, InconsistentValuesAreRefusedWithBothVariables) {
  FakeEnvironment env = kTorchrun;
  env.variables["RANK"] = "16";
  EXPECT_EQ(errorOf(env), "RANK=16 is not below WORLD_SIZE=16");
  env = kTorchrun;
  env.variables["LOCAL_RANK"] = "8";
  EXPECT_EQ(errorOf(env), "LOCAL_RANK=8 is not below LOCAL_WORLD_SIZE=8");
  env = kOpenMpi;
  env.variables["OMPI_COMM_WORLD_LOCAL_SIZE"] = "5";
  EXPECT_EQ(errorOf(env), "OMPI_COMM_WORLD_LOCAL_SIZE=5 is more than OMPI_COMM_WORLD_SIZE=4");
  env = kSlurm;
  env.variables["SLURM_LOCALID"] = "1";
  EXPECT_EQ(errorOf(env), "SLURM_LOCALID=1 is not below SLURM_TASKS_PER_NODE[SLURM_NODEID=2]=1");
  env = kSlurm;
  env.variables["SLURM_NODEID"] = "4";
  EXPECT_EQ(errorOf(env), "SLURM_NODEID=4 is not below the 4 nodes of SLURM_TASKS_PER_NODE='2(x2),1,1'");
  env = kSlurm;
  env.variables["SLURM_STEP_TASKS_PER_NODE"] = "2(x2)";
  EXPECT_EQ(errorOf(env), "SLURM_STEP_TASKS_PER_NODE='2(x2)' counts 4 tasks, but the step has 6");
}

TEST(BootstrapRankLayout, NcclMoeRunKeepsItsDomainContract) {
  FakeEnvironment env = kNcclMoeRun;
  env.variables["NCCL_MOE_DOMAIN_SIZE"] = "3";
  EXPECT_EQ(errorOf(env), "NCCL_MOE_NRANKS=8 is not a multiple of NCCL_MOE_DOMAIN_SIZE=3");
  env.variables["NCCL_MOE_DOMAIN_SIZE"] = "4";
  env.variables["NCCL_MOE_LOCAL_RANK"] = "2";
  EXPECT_EQ(errorOf(env), "NCCL_MOE_LOCAL_RANK=2 does not match NCCL_MOE_RANK=5 modulo NCCL_MOE_DOMAIN_SIZE=4");
}

TEST(BootstrapRankLayout, EveryLauncherVariableIsListedForTestsToClear) {
  const std::vector<const char*>& names = bootstrapVariables();
  for (const FakeEnvironment* env : {&kNcclMoeRun, &kTorchrun, &kOpenMpi, &kHydra, &kSlurm}) {
    for (const auto& [name, value] : env->variables) {
      EXPECT_NE(std::find_if(names.begin(), names.end(), [&](const char* listed) { return name == listed; }),
                names.end())
          << name;
    }
  }
}

}  // namespace
}  // namespace nccl_moe::bootstrap
