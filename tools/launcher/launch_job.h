// The whole launch: probe the machine, start MPS if asked, build each rank's environment, run
// and supervise the ranks, print the summary. Returns the launcher's exit code.
#pragma once

#include "launch_options.h"

namespace nccl_moe::launcher {

// Throws std::exception for launcher failures (no unique id, MPS missing, program missing...).
int launchJob(const LaunchOptions& options);

}  // namespace nccl_moe::launcher
