// End-to-end: the nccl-moe-run binary with real child processes (/bin/sh scripts and
// bootstrap_probe), run through the shell so stdout, stderr and the exit code are all seen.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "launcher_test_paths.h"
#include "temp_dir.h"

namespace nccl_moe::launcher {
namespace {

std::string quoted(const std::string& text) {
  std::string result = "'";
  for (char c : text) result += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return result + "'";
}

std::string readFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

struct LauncherRun {
  int exitCode = -1;
  std::string out, err;
};

class LauncherEndToEnd : public testing::Test {
 protected:
  TempDir dir_{"/tmp", "nccl-moe-run-test-"};

  // `environment`: "NAME=value" words put before the launcher by env(1).
  LauncherRun launch(const std::vector<std::string>& arguments,
             const std::vector<std::string>& environment = {}) {
    std::string command = "cd " + quoted(dir_.path()) + " && env";
    for (const std::string& variable : environment) command += " " + quoted(variable);
    command += " " + quoted(kNcclMoeRunPath);
    for (const std::string& argument : arguments) command += " " + quoted(argument);
    return runShell(command + " >out 2>err");
  }

  LauncherRun runShell(const std::string& command) {
    const int status = std::system(command.c_str());
    LauncherRun run;
    run.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = readFile(dir_.path() + "/out");
    run.err = readFile(dir_.path() + "/err");
    return run;
  }

  // A stand-in for nvidia-cuda-mps-control that records its calls in mps.log.
  std::string writeFakeMpsControl(int startExitCode = 0) {
    const std::string path = dir_.path() + "/fake-mps-control";
    std::ofstream(path) << "#!/bin/sh\n"
                        << "if [ \"$1\" = -d ]; then\n"
                        << "  echo \"start $CUDA_MPS_PIPE_DIRECTORY\" >> " << mpsLog() << "\n"
                        << "  [ " << startExitCode << " = 0 ] || echo 'no GPU here'\n"
                        << "  exit " << startExitCode << "\n"
                        << "fi\n"
                        << "read command\n"
                        << "echo \"$command $CUDA_MPS_PIPE_DIRECTORY\" >> " << mpsLog() << "\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
    return path;
  }
  std::string mpsLog() const { return dir_.path() + "/mps.log"; }
};

TEST_F(LauncherEndToEnd, EveryRankGetsItsIdentityAndOneSharedUniqueId) {
  const LauncherRun run = launch({"-np", "4", "--nodes", "2", "--gpus", "1", kBootstrapProbePath});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const std::regex line(
      R"(\[rank (\d)\] rank=(\d) nranks=4 local=(\d) domain_size=2 domain=(\d) id=([0-9a-f]{256}) )"
      R"(launcher=nccl-moe-run via=NCCL_MOE_UNIQUE_ID)");
  std::set<std::string> ids;
  std::set<int> ranks;
  for (const std::string& text : linesOf(run.out)) {
    std::smatch match;
    ASSERT_TRUE(std::regex_match(text, match, line)) << text;
    const int rank = std::stoi(match[1]);
    EXPECT_EQ(std::stoi(match[2]), rank);
    EXPECT_EQ(std::stoi(match[3]), rank % 2);
    EXPECT_EQ(std::stoi(match[4]), rank / 2);
    ids.insert(match[5]);
    ranks.insert(rank);
  }
  EXPECT_EQ(ranks, (std::set<int>{0, 1, 2, 3}));
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_NE(run.err.find("nccl-moe-run: summary"), std::string::npos);
}

TEST_F(LauncherEndToEnd, SharedGpuPlacementVariables) {
  const LauncherRun run = launch({"-np", "2", "--gpus", "1", "sh", "-c",
                          "echo $CUDA_VISIBLE_DEVICES $NCCL_HOSTID $NCCL_NVLS_ENABLE $MASTER_ADDR "
                          "$LOCAL_WORLD_SIZE"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_NE(run.out.find("[rank 0] 0 nccl-moe-vnode0-rank0 0 127.0.0.1 2\n"), std::string::npos);
  EXPECT_NE(run.out.find("[rank 1] 0 nccl-moe-vnode0-rank1 0 127.0.0.1 2\n"), std::string::npos);
}

TEST_F(LauncherEndToEnd, ExitCodeIsTheFailingRanks) {
  const LauncherRun run = launch({"-np", "3", "sh", "-c", "[ $RANK != 1 ] || exit 9"});
  EXPECT_EQ(run.exitCode, 9);
  EXPECT_NE(run.err.find("     1  exit 9"), std::string::npos) << run.err;
}

TEST_F(LauncherEndToEnd, FailingRankStopsTheOthers) {
  const LauncherRun run = launch({"-np", "2", "--fail-grace", "0.2", "--kill-grace", "0.2", "sh", "-c",
                          "[ $RANK = 1 ] && exit 1; sleep 30"});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_NE(run.err.find("stopped: rank 1 failed"), std::string::npos) << run.err;
}

TEST_F(LauncherEndToEnd, TimeoutStopsHungRanksAndNamesThem) {
  const LauncherRun run = launch({"-np", "3", "--timeout", "0.5", "--kill-grace", "0.2", "sh", "-c",
                          "[ $RANK = 0 ] || sleep 30"});
  EXPECT_EQ(run.exitCode, 124);
  EXPECT_NE(run.err.find("ranks still running: 1, 2"), std::string::npos) << run.err;
}

TEST_F(LauncherEndToEnd, OutputDirectoryHoldsTheRankLogs) {
  const LauncherRun run = launch({"-np", "2", "--output-dir", "logs", "sh", "-c", "echo hi from $RANK"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(readFile(dir_.path() + "/logs/rank-0.log"), "hi from 0\n");
  EXPECT_EQ(readFile(dir_.path() + "/logs/rank-1.log"), "hi from 1\n");
}

TEST_F(LauncherEndToEnd, UsageErrorsAndHelp) {
  LauncherRun run = launch({"-np", "x", "true"});
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_EQ(run.err, "nccl-moe-run: -np expects an integer >= 1, got 'x'\nTry 'nccl-moe-run --help'.\n");
  run = launch({"--help"});
  EXPECT_EQ(run.exitCode, 0);
  EXPECT_EQ(run.out.rfind("Usage: nccl-moe-run -np N", 0), 0u);
}

TEST_F(LauncherEndToEnd, MissingProgramIsOneClearError) {
  const LauncherRun run = launch({"-np", "2", "no-such-program-here"});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.err, "nccl-moe-run: program 'no-such-program-here' was not found in PATH\n");
}

TEST_F(LauncherEndToEnd, MpsDaemonStartsBeforeAndStopsAfterTheRanks) {
  const std::string control = writeFakeMpsControl();
  const LauncherRun run = launch({"-np", "2", "--mps", "sh", "-c",
                          "echo \"rank $RANK $CUDA_MPS_PIPE_DIRECTORY\" >> " + mpsLog()},
                         {"NCCL_MOE_MPS_CONTROL=" + control});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const std::vector<std::string> calls = linesOf(readFile(mpsLog()));
  ASSERT_EQ(calls.size(), 4u);
  const std::string pipeDir = calls[0].substr(std::string("start ").size());
  EXPECT_EQ(calls[0].rfind("start /tmp/nccl-moe-mps-", 0), 0u) << calls[0];
  EXPECT_EQ(std::set<std::string>(calls.begin() + 1, calls.begin() + 3),
            (std::set<std::string>{"rank 0 " + pipeDir, "rank 1 " + pipeDir}));
  EXPECT_EQ(calls[3], "quit " + pipeDir);
  EXPECT_FALSE(std::filesystem::exists(pipeDir));  // the private directory is cleaned up
}

TEST_F(LauncherEndToEnd, MpsDaemonStopsAlsoWhenTheJobTimesOut) {
  const std::string control = writeFakeMpsControl();
  const LauncherRun run = launch({"-np", "1", "--mps", "--timeout", "0.3", "--kill-grace", "0.1", "sleep",
                          "30"},
                         {"NCCL_MOE_MPS_CONTROL=" + control});
  EXPECT_EQ(run.exitCode, 124);
  const std::vector<std::string> calls = linesOf(readFile(mpsLog()));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].rfind("quit ", 0), 0u);
}

TEST_F(LauncherEndToEnd, MpsDaemonStopsAlsoWhenTheLauncherIsTerminated) {
  const std::string control = writeFakeMpsControl();
  std::string command = "cd " + quoted(dir_.path()) + "; NCCL_MOE_MPS_CONTROL=" +
                        quoted(control) + " " + quoted(kNcclMoeRunPath) +
                        " -np 2 --mps --kill-grace 0.2 sh -c 'touch started; sleep 30' >out 2>err &"
                        " launcher=$!; i=0;"
                        " while [ ! -e started ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done;"
                        " kill -TERM $launcher; wait $launcher; echo $? > code";
  runShell(command);
  EXPECT_EQ(readFile(dir_.path() + "/code"), "143\n");
  const std::vector<std::string> calls = linesOf(readFile(mpsLog()));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].rfind("quit ", 0), 0u);
  EXPECT_NE(readFile(dir_.path() + "/err").find("launcher interrupted"), std::string::npos);
}

TEST_F(LauncherEndToEnd, MpsStartFailureStartsNoRank) {
  const std::string control = writeFakeMpsControl(1);
  const LauncherRun run = launch({"-np", "2", "--mps", "sh", "-c", "echo rank ran"},
                         {"NCCL_MOE_MPS_CONTROL=" + control});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_NE(run.err.find("-d' failed (exit 1; it said: no GPU here)"), std::string::npos) << run.err;
  EXPECT_EQ(run.out, "");
}

TEST_F(LauncherEndToEnd, MissingMpsControlIsAClearError) {
  LauncherRun run = launch({"-np", "1", "--mps", "/bin/true"},
                   {"NCCL_MOE_MPS_CONTROL=/nonexistent/mps-control"});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.err,
            "nccl-moe-run: --mps: NCCL_MOE_MPS_CONTROL='/nonexistent/mps-control' is not an "
            "executable program\n");

  run = launch({"-np", "1", "--mps", "/bin/true"}, {"PATH=" + dir_.path()});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_NE(run.err.find("--mps: nvidia-cuda-mps-control was not found in PATH"),
            std::string::npos)
      << run.err;
}

}  // namespace
}  // namespace nccl_moe::launcher
