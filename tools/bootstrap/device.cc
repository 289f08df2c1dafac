#include "tools/bootstrap/device.h"

#include <cuda_runtime_api.h>

#include <string>

namespace nccl_moe::bootstrap {
namespace {

std::string rankText(const RankLayout& layout) { return "rank " + std::to_string(layout.rank); }

}  // namespace

int chooseDevice(const RankLayout& layout, const EnvironmentLookup& lookup, int visible) {
  if (visible <= 0) throw BootstrapError(rankText(layout) + ": no CUDA device is visible");
  if (std::optional<int> device = readInt(lookup, "NCCL_MOE_DEVICE", 0)) {
    if (*device >= visible) {
      throw BootstrapError("NCCL_MOE_DEVICE=" + std::to_string(*device) + " is not below the " +
                           std::to_string(visible) + " CUDA devices visible to " + rankText(layout));
    }
    return *device;
  }
  return layout.localRank % visible;
}

int selectDevice(const RankLayout& layout, const EnvironmentLookup& lookup) {
  int visible = 0;
  const cudaError_t counted = cudaGetDeviceCount(&visible);
  if (counted != cudaSuccess) {
    throw BootstrapError(rankText(layout) + ": no CUDA device is usable (cudaGetDeviceCount: " +
                         cudaGetErrorString(counted) + ")");
  }
  const int device = chooseDevice(layout, lookup, visible);
  const cudaError_t set = cudaSetDevice(device);
  if (set != cudaSuccess) {
    throw BootstrapError(rankText(layout) + ": cudaSetDevice(" + std::to_string(device) +
                         ") failed: " + cudaGetErrorString(set));
  }
  return device;
}

}  // namespace nccl_moe::bootstrap
