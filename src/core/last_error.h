// Failure reporting of the public API: the thread's last error message (and the communicator's),
// plus a WARN log line, as NCCL does.
#pragma once

#include <nccl.h>

#include <string>

#include "core/status.h"

namespace nccl_moe {

// Records `status` as the calling thread's last error (and in *commError when given), logs it,
// and returns its code. `call` names the API function.
ncclResult_t reportFailure(const char* call, const Status& status, std::string* commError = nullptr);
const char* threadLastError();

}  // namespace nccl_moe
