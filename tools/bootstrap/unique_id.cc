#include "tools/bootstrap/unique_id.h"

#include <string>

#include "nccl_moe_bootstrap.h"

namespace nccl_moe::bootstrap {

ncclUniqueId createUniqueId() {
  ncclUniqueId id{};
  const ncclResult_t result = ncclGetUniqueId(&id);
  if (result != ncclSuccess) {
    throw BootstrapError(std::string("ncclGetUniqueId failed: ") + ncclGetErrorString(result) + " (" +
                         ncclGetLastError(nullptr) + ")");
  }
  return id;
}

}  // namespace nccl_moe::bootstrap
