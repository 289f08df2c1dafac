// Failure reporting of the public API: the thread's last error message (and the communicator's),
// plus a WARN log line, as NCCL does.
#pragma once

#include <nccl.h>

#include <mutex>
#include <string>

#include "misc/status.h"

namespace nccl_moe {

// A communicator's last failure message. Any thread may write it (a call on another thread, the
// async-error query a watchdog polls), so it is only read as a copy taken under the lock.
class SharedErrorMessage {
 public:
  void set(const std::string& message);
  std::string get() const;

 private:
  mutable std::mutex mutex_;
  std::string message_;
};

// Records `status` as the calling thread's last error (and in *commError when given), logs it,
// and returns its code. `call` names the API function.
ncclResult_t reportFailure(const char* call, const Status& status,
                           SharedErrorMessage* commError = nullptr);
// The calling thread's last failure message; stays valid until the thread's next failing call.
const char* threadLastError();
// A copy of `message` owned by the calling thread, or NULL when it is empty. The pointer stays
// valid, and its text unchanged, until this thread calls lastErrorCopy again: other threads
// writing `message` meanwhile cannot change or free it.
const char* lastErrorCopy(const SharedErrorMessage& message);

}  // namespace nccl_moe
