// What the launcher asks CUDA and NCCL before starting ranks.
#pragma once

#include <string>

namespace nccl_moe::launcher {

// cudaGetDeviceCount through the static runtime; 0 when it fails (no driver, no GPU).
int countVisibleGpus();

// A fresh ncclUniqueId in hex. NCCL starts its bootstrap root in this process, so the launcher
// must outlive the ranks' ncclCommInitRank (it does: it waits for them). Throws
// BootstrapError (a std::runtime_error) with NCCL's message on failure.
std::string createUniqueIdHex();

}  // namespace nccl_moe::launcher
