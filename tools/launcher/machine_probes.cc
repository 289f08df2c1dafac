#include "machine_probes.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <stdexcept>

#include "unique_id_hex.h"

namespace nccl_moe::launcher {

int countVisibleGpus() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
}

std::string createUniqueIdHex() {
  ncclUniqueId id{};
  const ncclResult_t result = ncclGetUniqueId(&id);
  if (result != ncclSuccess) {
    throw std::runtime_error(std::string("ncclGetUniqueId failed: ") + ncclGetErrorString(result) +
                             " (" + ncclGetLastError(nullptr) + ")");
  }
  return nccl_moe::encodeUniqueIdHex(id);
}

}  // namespace nccl_moe::launcher
