#include "nccl_log.h"

#include <cstdarg>
#include <cstdio>

#include "misc/log.h"

namespace nccl_moe {

namespace {

// The logger is a C variadic function: pass the finished text through "%s" so that no user text
// is ever read as a format.
void emit(tuner_abi::Logger logger, int level, unsigned long subsys, const char* fmt, va_list args) {
  char text[1024];
  std::vsnprintf(text, sizeof(text), fmt, args);
  if (logger != nullptr) logger(level, subsys, __FILE__, __LINE__, "%s", text);
  logMessage(level == tuner_abi::kLogWarn ? LogLevel::kWarn : LogLevel::kInfo, "%s", text);
}

}  // namespace

void NcclLog::info(unsigned long subsys, const char* fmt, ...) const {
  va_list args;
  va_start(args, fmt);
  emit(logger_, tuner_abi::kLogInfo, subsys, fmt, args);
  va_end(args);
}

void NcclLog::warn(const char* fmt, ...) const {
  va_list args;
  va_start(args, fmt);
  emit(logger_, tuner_abi::kLogWarn, tuner_abi::kSubsysInit | tuner_abi::kSubsysTuning, fmt, args);
  va_end(args);
}

}  // namespace nccl_moe
