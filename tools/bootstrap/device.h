// Step 3 of the bootstrap: this rank's GPU.
#pragma once

#include "nccl_moe_bootstrap.h"
#include "tools/bootstrap/environment.h"

namespace nccl_moe::bootstrap {

// The device index: NCCL_MOE_DEVICE when set (nccl-moe-run sets 0), else local rank % `visible`.
// Throws BootstrapError when no device is visible or NCCL_MOE_DEVICE names one that is not.
int chooseDevice(const RankLayout& layout, const EnvironmentLookup& lookup, int visible);

// chooseDevice over cudaGetDeviceCount, then cudaSetDevice; returns the device.
int selectDevice(const RankLayout& layout, const EnvironmentLookup& lookup);

}  // namespace nccl_moe::bootstrap
