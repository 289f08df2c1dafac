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

}  // namespace nccl_moe::harness
