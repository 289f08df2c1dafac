// How a rank program of the GPU checks joins its job: the bootstrap (its rank layout from the
// launcher, its GPU made current, the job's NCCL unique id), then its NCCL communicator.
#pragma once

#include <nccl.h>

#include "nccl_moe_bootstrap.h"

namespace nccl_moe::harness {

// 0 once *setup and *nccl are set; otherwise the exit status the program ends with, after one line
// "<program>: ..." on stderr: 2 when the launch environment is wrong (the bootstrap refused it),
// 1 when NCCL failed.
int startRank(const char* program, RankBootstrap* setup, ncclComm_t* nccl);

// The last line of a rank program, "rank R: PASSED" or "rank R: FAILED" (the launcher's logs and the
// suites read it), and its exit status.
int rankVerdict(int rank, int failures);

// Runs a rank program's main; an exception that escapes it (a failed CUDA call of the harness's
// device buffers, which throw) ends the rank with status 1 and "rank R: <what>" on stderr, R read
// when it happens (-1 before the bootstrap).
int runRankProgram(int (*body)(int, char**), int argc, char** argv, const int& rank);

}  // namespace nccl_moe::harness
