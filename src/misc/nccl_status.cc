#include "misc/nccl_status.h"

namespace nccl_moe {

Status ncclStatus(ncclResult_t result, const char* what) {
  if (result == ncclSuccess) return Status::ok();
  // ncclGetLastError is weak (nccl_symbols.h): absent before NCCL 2.13.
  const char* detail = ncclGetLastError != nullptr ? ncclGetLastError(nullptr) : "";
  return {result, format("%s failed: %s (%s)", what, ncclGetErrorString(result), detail)};
}

}  // namespace nccl_moe
