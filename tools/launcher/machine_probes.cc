#include "machine_probes.h"

#include <cuda_runtime_api.h>

#include "tools/bootstrap/unique_id.h"
#include "tools/bootstrap/unique_id_hex.h"

namespace nccl_moe::launcher {

int countVisibleGpus() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
}

std::string createUniqueIdHex() { return encodeUniqueIdHex(bootstrap::createUniqueId()); }

}  // namespace nccl_moe::launcher
