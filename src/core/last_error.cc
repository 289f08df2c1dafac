#include "core/last_error.h"

#include "core/log.h"

namespace nccl_moe {

namespace {
thread_local std::string lastError;
}

ncclResult_t reportFailure(const char* call, const Status& status, std::string* commError) {
  lastError = std::string(call) + ": " + status.message();
  if (commError != nullptr) *commError = lastError;
  logWarn("%s", lastError.c_str());
  return status.code();
}

const char* threadLastError() { return lastError.c_str(); }

}  // namespace nccl_moe
