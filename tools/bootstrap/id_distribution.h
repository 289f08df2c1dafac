// Step 2 of the bootstrap: every rank gets the same ncclUniqueId.
#pragma once

#include <nccl.h>

#include <string>

#include "nccl_moe_bootstrap.h"
#include "tools/bootstrap/environment.h"
#include "tools/bootstrap/unique_id.h"

namespace nccl_moe::bootstrap {

struct DistributedId {
  ncclUniqueId id{};
  std::string source;  // how it came (RankBootstrap::idSource)
};

// In order: NCCL_MOE_UNIQUE_ID; `make` alone for a job of one rank; MPI (mpi_id.h); the TCP
// store (store_settings.h, tcp_store.h). Throws BootstrapError.
DistributedId distributeUniqueId(const RankLayout& layout, const EnvironmentLookup& lookup,
                                 const IdMaker& make = createUniqueId);

}  // namespace nccl_moe::bootstrap
