// Rank program for the launcher and bootstrap tests: prints the layout the rank bootstrap reads
// and the unique id it distributes (no GPU: the device is not selected), or its error.
#include <cstdio>

#include "nccl_moe_bootstrap.h"
#include "tools/bootstrap/unique_id_hex.h"

int main() {
  try {
    nccl_moe::BootstrapOptions options;
    options.selectDevice = false;
    const nccl_moe::RankBootstrap me = nccl_moe::bootstrapRank(options);
    const nccl_moe::RankLayout& layout = me.layout;
    std::printf("rank=%d nranks=%d local=%d domain_size=%d domain=%d id=%s launcher=%s via=%s\n", layout.rank,
                layout.size, layout.localRank, layout.localSize, layout.rank / layout.localSize,
                nccl_moe::encodeUniqueIdHex(me.uniqueId).c_str(), nccl_moe::launcherName(layout.launcher),
                me.idSource.c_str());
    return 0;
  } catch (const nccl_moe::BootstrapError& error) {
    std::printf("error: %s\n", error.what());
    return 3;
  }
}
