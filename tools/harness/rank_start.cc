#include "tools/harness/rank_start.h"

#include <cstdio>

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

}  // namespace nccl_moe::harness
