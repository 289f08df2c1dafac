#include "misc/last_error.h"

#include "misc/log.h"

namespace nccl_moe {

namespace {
thread_local std::string lastError;
thread_local std::string copyForCaller;
}  // namespace

void SharedErrorMessage::set(const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  message_ = message;
}

std::string SharedErrorMessage::get() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return message_;
}

ncclResult_t reportFailure(const char* call, const Status& status, SharedErrorMessage* commError) {
  lastError = std::string(call) + ": " + status.message();
  if (commError != nullptr) commError->set(lastError);
  logWarn("%s", lastError.c_str());
  return status.code();
}

const char* threadLastError() { return lastError.c_str(); }

const char* lastErrorCopy(const SharedErrorMessage& message) {
  std::string text = message.get();
  if (text.empty()) return nullptr;
  copyForCaller = std::move(text);
  return copyForCaller.c_str();
}

}  // namespace nccl_moe
