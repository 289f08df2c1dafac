// One job on the one-GPU virtual cluster (DESIGN.md section 5), as the GPU suites start it:
// nccl-moe-run with MPS, a limit for the whole job and a grace for the ranks after a failure, one
// rank program and its flags. The programs' build paths can be replaced through the environment (a
// build carried to another machine: tests/gpu/pack_build.sh).
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace nccl_moe::test {

// `builtPath`, unless the environment variable `variable` names another.
inline std::string toolPath(const char* variable, const char* builtPath) {
  const char* value = std::getenv(variable);
  return value != nullptr && value[0] != '\0' ? value : builtPath;
}

struct ClusterJob {
  std::string env;      // assignments for the job's environment, e.g. "NCCL_MOE_NET_CHUNKS=3"
  std::string runner;   // nccl-moe-run
  std::string program;  // the rank program
  int ranks = 2;
  int nodes = 1;        // virtual nodes = NVLink domains
  int limitS = 240;
  std::string args;     // the rank program's flags
};

// The job's exit status (0: every rank passed), -1 if it did not exit.
inline int runClusterJob(const ClusterJob& job) {
  const std::string command = job.env + " " + job.runner + " -np " + std::to_string(job.ranks) + " --nodes " +
                              std::to_string(job.nodes) + " --mps --timeout " + std::to_string(job.limitS) +
                              " --fail-grace 20 " + job.program + " " + job.args;
  std::printf("%s\n", command.c_str());
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace nccl_moe::test
