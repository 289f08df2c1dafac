// Rank program for the launcher tests: prints what readRankEnvironment() finds, or its error.
#include <cstdio>

#include "rank_env.h"
#include "unique_id_hex.h"

int main() {
  try {
    const nccl_moe::RankEnvironment env = nccl_moe::readRankEnvironment();
    std::printf("rank=%d nranks=%d local=%d domain_size=%d domain=%d id=%s\n", env.rank,
                env.nranks, env.localRank, env.domainSize, env.domainIndex(),
                nccl_moe::encodeUniqueIdHex(env.uniqueId).c_str());
    return 0;
  } catch (const nccl_moe::RankEnvironmentError& error) {
    std::printf("error: %s\n", error.what());
    return 3;
  }
}
