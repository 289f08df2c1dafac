// nccl-moe-demo's two runs: the library on GPUs (every rank checks its outputs against the CPU
// reference, then the calls are timed) and the CPU reference alone (no GPU, or --cpu).
#pragma once

#include <string>

#include "nccl_moe_bootstrap.h"
#include "tools/demo/options.h"

namespace nccl_moe::demo {

// Why the GPU path cannot run here ("no GPU: cudaGetDeviceCount: ..."), or "" when a GPU is present.
std::string whyNoGpu();

// The exit status: 0 every check passed, 1 one failed. Failed calls throw std::runtime_error.
int runOnGpus(const DemoOptions& o, const RankLayout& layout);

// `why` says why the GPU path does not run. The exit status as above.
int runOnCpu(const DemoOptions& o, const std::string& why);

}  // namespace nccl_moe::demo
