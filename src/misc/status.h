// Result of an internal operation: an ncclResult_t plus the message a user needs to act on it.
#pragma once

#include <nccl.h>

#include <string>
#include <utility>

namespace nccl_moe {

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ncclResult_t code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  static Status invalidArgument(std::string message) {
    return {ncclInvalidArgument, std::move(message)};
  }
  static Status invalidUsage(std::string message) { return {ncclInvalidUsage, std::move(message)}; }
  static Status internal(std::string message) { return {ncclInternalError, std::move(message)}; }
  static Status system(std::string message) { return {ncclSystemError, std::move(message)}; }

  bool isOk() const { return code_ == ncclSuccess; }
  ncclResult_t code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  ncclResult_t code_ = ncclSuccess;
  std::string message_;
};

// printf-style formatting into a std::string (messages name arguments, ranks and limits).
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace nccl_moe
