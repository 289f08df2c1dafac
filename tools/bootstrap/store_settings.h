// Where the TCP id store runs, how long its waits last, and which launcher job it serves, from
// the environment (the rules: docs/launching.md, "How the id travels").
#pragma once

#include <chrono>
#include <string>

#include "nccl_moe_bootstrap.h"
#include "tools/bootstrap/environment.h"

namespace nccl_moe::bootstrap {

constexpr int kDefaultStorePort = 29500;  // torch.distributed's default MASTER_PORT
constexpr int kDefaultTimeoutSeconds = 300;

struct StoreSettings {
  std::string host;  // rank 0's address, where the others connect (rank 0 listens on all)
  int port = kDefaultStorePort;
  std::string jobName;  // the launcher's job id, "" when it names none
};

// Throws BootstrapError naming a malformed variable, or saying which variable to set when the
// ranks span hosts and nothing names rank 0's.
StoreSettings readStoreSettings(const RankLayout& layout, const EnvironmentLookup& lookup);

// NCCL_MOE_BOOTSTRAP_TIMEOUT (seconds), default kDefaultTimeoutSeconds.
std::chrono::milliseconds readBootstrapTimeout(const EnvironmentLookup& lookup);

}  // namespace nccl_moe::bootstrap
