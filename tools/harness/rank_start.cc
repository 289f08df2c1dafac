#include "tools/harness/rank_start.h"

#include <cstdio>
#include <exception>

namespace nccl_moe::harness {

int startRank(const char* program, RankBootstrap* setup, ncclComm_t* nccl) {
  try {
    *setup = bootstrapRank();
  } catch (const BootstrapError& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 2;
  }
  const RankLayout& me = setup->layout;
  if (const ncclResult_t r = ncclCommInitRank(nccl, me.size, setup->uniqueId, me.rank); r != ncclSuccess) {
    std::fprintf(stderr, "%s: rank %d: ncclCommInitRank failed: %s\n", program, me.rank, ncclGetErrorString(r));
    return 1;
  }
  return 0;
}

int rankVerdict(int rank, int failures) {
  std::printf("rank %d: %s\n", rank, failures == 0 ? "PASSED" : "FAILED");
  return failures == 0 ? 0 : 1;
}

int runRankProgram(int (*body)(int, char**), int argc, char** argv, const int& rank) {
  try {
    return body(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    return 1;
  }
}

}  // namespace nccl_moe::harness
