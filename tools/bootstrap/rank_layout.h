// Who this process is: rank, size, local rank and local size, from the first launcher whose
// variables are set (the order and the variables: nccl_moe_bootstrap.h), else one process alone.
#pragma once

#include <vector>

#include "nccl_moe_bootstrap.h"
#include "tools/bootstrap/environment.h"

namespace nccl_moe::bootstrap {

// Throws BootstrapError naming the variable that is missing, malformed or inconsistent.
RankLayout readRankLayout(const EnvironmentLookup& lookup);

// Every variable the bootstrap reads (layout, id, store, device): tests clear them all so that
// the machine's own launcher cannot leak into a test.
const std::vector<const char*>& bootstrapVariables();

}  // namespace nccl_moe::bootstrap
