// The rank bootstrap in separate processes, started as each launcher starts its ranks: with its
// variables set by hand (torchrun, SLURM, Open MPI), and under a real mpirun when one is installed.
// Every rank must print the same unique id, read its own layout, and name how the id came.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "../support/shell_text.h"
#include "launcher_test_paths.h"
#include "tools/bootstrap/rank_layout.h"
#include "tools/bootstrap/socket_io.h"

namespace nccl_moe::bootstrap {
namespace {

using Variables = std::map<std::string, std::string>;

using test::readFile;
using test::shellQuoted;

// `env` with every bootstrap variable of this machine cleared, then `variables` set.
std::string cleanEnv(const Variables& variables) {
  std::string command = "env";
  for (const char* name : bootstrapVariables()) command += std::string(" -u ") + name;
  for (const auto& [name, value] : variables) command += " " + shellQuoted(name + "=" + value);
  return command;
}

int freePort() { return localPort(listenOn(0).get()); }

struct Rank {
  int exitCode = -1;
  std::string output;
};

class BootstrapProcesses : public testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/nccl-moe-bootstrap-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Starts one probe per entry at once, each with its variables, and waits for all (60 s cap).
  std::vector<Rank> runRanks(const std::vector<Variables>& perRank) {
    std::string script = "cd " + shellQuoted(dir_.string()) + " || exit 1\n";
    for (size_t r = 0; r < perRank.size(); ++r) {
      const std::string name = std::to_string(r);
      script += "(" + cleanEnv(perRank[r]) + " timeout 60 " + shellQuoted(kBootstrapProbePath) + " >" + name +
                ".out 2>&1; echo $? >" + name + ".rc) &\n";
    }
    script += "wait\n";
    [[maybe_unused]] const int ran = std::system(("sh -c " + shellQuoted(script)).c_str());  // each rank's .rc says
    std::vector<Rank> ranks(perRank.size());
    for (size_t r = 0; r < perRank.size(); ++r) {
      const std::string rc = readFile(dir_ / (std::to_string(r) + ".rc"));
      ranks[r].exitCode = rc.empty() ? -1 : std::stoi(rc);
      ranks[r].output = readFile(dir_ / (std::to_string(r) + ".out"));
    }
    return ranks;
  }

  std::filesystem::path dir_;
};

struct ProbeLine {
  int rank, size, localRank, localSize;
  std::string id, launcher, via;
};

std::vector<ProbeLine> probeLinesOf(const std::string& output) {
  static const std::regex line(
      R"(rank=(\d+) nranks=(\d+) local=(\d+) domain_size=(\d+) domain=\d+ id=([0-9a-f]{256}) launcher=(.+) via=(.+))");
  std::vector<ProbeLine> lines;
  std::istringstream stream(output);
  for (std::string text; std::getline(stream, text);) {
    std::smatch match;
    if (!std::regex_match(text, match, line)) continue;
    lines.push_back({std::stoi(match[1]), std::stoi(match[2]), std::stoi(match[3]), std::stoi(match[4]), match[5],
                     match[6], match[7]});
  }
  return lines;
}

// One line per rank, each rank once, all with one id from one source.
void expectOneJob(const std::vector<ProbeLine>& lines, int size, const std::string& launcher, const std::string& via) {
  ASSERT_EQ(lines.size(), static_cast<size_t>(size));
  std::set<int> ranks;
  std::set<std::string> ids;
  for (const ProbeLine& line : lines) {
    ranks.insert(line.rank);
    ids.insert(line.id);
    EXPECT_EQ(line.size, size);
    EXPECT_EQ(line.launcher, launcher);
    EXPECT_EQ(line.via, via);
  }
  EXPECT_EQ(ranks.size(), static_cast<size_t>(size));
  EXPECT_EQ(ids.size(), 1u);
}

std::vector<ProbeLine> linesOf(const std::vector<Rank>& ranks) {
  std::vector<ProbeLine> lines;
  for (const auto& rank : ranks) {
    EXPECT_EQ(rank.exitCode, 0) << rank.output;
    for (const ProbeLine& line : probeLinesOf(rank.output)) lines.push_back(line);
  }
  return lines;
}

TEST_F(BootstrapProcesses, TorchrunVariables) {
  const int port = freePort();
  std::vector<Variables> ranks;
  for (int r = 0; r < 3; ++r) {
    ranks.push_back({{"RANK", std::to_string(r)}, {"WORLD_SIZE", "3"}, {"LOCAL_RANK", std::to_string(r)},
                     {"LOCAL_WORLD_SIZE", "3"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(port)},
                     {"TORCHELASTIC_RUN_ID", "test"}});
  }
  const std::vector<ProbeLine> lines = linesOf(runRanks(ranks));
  expectOneJob(lines, 3, "torchrun", "TCP store at 127.0.0.1:" + std::to_string(port));
  for (const ProbeLine& line : lines) EXPECT_EQ(line.localRank, line.rank);
}

TEST_F(BootstrapProcesses, SlurmVariablesFindRankZeroOnTheFirstNode) {
  const int port = freePort();
  std::vector<Variables> ranks;
  for (int r = 0; r < 4; ++r) {
    ranks.push_back({{"SLURM_PROCID", std::to_string(r)}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", std::to_string(r % 2)},
                     {"SLURM_NODEID", std::to_string(r / 2)}, {"SLURM_TASKS_PER_NODE", "2(x2)"},
                     {"SLURM_JOB_NODELIST", "localhost"}, {"SLURM_JOB_ID", "42"}, {"SLURM_STEP_ID", "0"},
                     {"NCCL_MOE_BOOTSTRAP_PORT", std::to_string(port)}});
  }
  const std::vector<ProbeLine> lines = linesOf(runRanks(ranks));
  expectOneJob(lines, 4, "SLURM", "TCP store at localhost:" + std::to_string(port));
  for (const ProbeLine& line : lines) {
    EXPECT_EQ(line.localRank, line.rank % 2);
    EXPECT_EQ(line.localSize, 2);
  }
}

TEST_F(BootstrapProcesses, OpenMpiVariablesWithoutMpi) {
  if (kBootstrapWithMpi) GTEST_SKIP() << "this build carries the id over MPI (see UnderMpirun)";
  const int port = freePort();
  std::vector<Variables> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.push_back({{"OMPI_COMM_WORLD_RANK", std::to_string(r)}, {"OMPI_COMM_WORLD_SIZE", "2"},
                     {"OMPI_COMM_WORLD_LOCAL_RANK", std::to_string(r)}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                     {"NCCL_MOE_BOOTSTRAP_PORT", std::to_string(port)}});
  }
  expectOneJob(linesOf(runRanks(ranks)), 2, "Open MPI", "TCP store at 127.0.0.1:" + std::to_string(port));
}

TEST_F(BootstrapProcesses, TheLaunchersIdNeedsNoStore) {
  const std::string id(256, 'a');
  std::vector<Variables> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.push_back({{"RANK", std::to_string(r)}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", std::to_string(r)},
                     {"LOCAL_WORLD_SIZE", "2"}, {"NCCL_MOE_UNIQUE_ID", id}});
  }
  const std::vector<ProbeLine> lines = linesOf(runRanks(ranks));
  expectOneJob(lines, 2, "torchrun", "NCCL_MOE_UNIQUE_ID");
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0].id, id);
}

TEST_F(BootstrapProcesses, ABadVariableStopsTheRankNamingIt) {
  const std::vector<Rank> ranks = runRanks({{{"RANK", "0"}, {"WORLD_SIZE", "two"}, {"LOCAL_RANK", "0"}}});
  EXPECT_EQ(ranks[0].exitCode, 3);
  EXPECT_EQ(ranks[0].output, "error: WORLD_SIZE='two' is not an integer >= 1\n");
}

TEST_F(BootstrapProcesses, ARankAloneTimesOutNamingRankZeroAndThePort) {
  const int port = freePort();
  const std::vector<Rank> ranks = runRanks({{{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"},
                                             {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_PORT", std::to_string(port)},
                                             {"NCCL_MOE_BOOTSTRAP_TIMEOUT", "1"}}});
  EXPECT_EQ(ranks[0].exitCode, 3);
  EXPECT_EQ(ranks[0].output.rfind("error: rank 1: no unique id from rank 0 at 127.0.0.1:" + std::to_string(port) +
                                      " within 1 s",
                                  0),
            0u)
      << ranks[0].output;
}

TEST_F(BootstrapProcesses, UnderMpirun) {
  if (std::string(kMpirunPath).empty()) GTEST_SKIP() << "no mpirun installed";
  // Open MPI refuses root and more ranks than cores without these; other MPIs ignore them.
  const Variables variables{{"OMPI_ALLOW_RUN_AS_ROOT", "1"}, {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"},
                            {"OMPI_MCA_rmaps_base_oversubscribe", "1"},
                            {"NCCL_MOE_BOOTSTRAP_PORT", std::to_string(freePort())}};
  const std::string command = cleanEnv(variables) + " timeout 120 " + shellQuoted(kMpirunPath) + " -np 2 " +
                              shellQuoted(kBootstrapProbePath) + " >" + shellQuoted((dir_ / "out").string()) + " 2>" +
                              shellQuoted((dir_ / "err").string());
  const int status = std::system(command.c_str());
  const std::string output = readFile(dir_ / "out");
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output << readFile(dir_ / "err");
  const std::vector<ProbeLine> lines = probeLinesOf(output);
  ASSERT_EQ(lines.size(), 2u) << output;
  const std::string via = kBootstrapWithMpi ? "MPI" : lines[0].via;
  expectOneJob(lines, 2, lines[0].launcher, via);
  EXPECT_TRUE(lines[0].launcher == "Open MPI" || lines[0].launcher == "MPICH/PMI") << lines[0].launcher;
  if (!kBootstrapWithMpi) {
    EXPECT_EQ(via.rfind("TCP store at 127.0.0.1:", 0), 0u) << via;
  }
}

}  // namespace
}  // namespace nccl_moe::bootstrap
