#include "misc/nccl_status.h"

namespace nccl_moe {

Status ncclStatus(ncclResult_t result, const char* what) {
  if (result == ncclSuccess) return Status::ok();
  return {result, format("%s failed: %s (%s)", what, ncclGetErrorString(result), ncclGetLastError(nullptr))};
}

}  // namespace nccl_moe
