#include "misc/log.h"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "misc/env.h"

namespace nccl_moe {

namespace {

LogLevel parseLevel(const char* text) {
  if (text == nullptr) return LogLevel::kNone;
  if (strcasecmp(text, "VERSION") == 0) return LogLevel::kVersion;
  if (strcasecmp(text, "WARN") == 0) return LogLevel::kWarn;
  if (strcasecmp(text, "INFO") == 0) return LogLevel::kInfo;
  if (strcasecmp(text, "TRACE") == 0) return LogLevel::kTrace;
  return LogLevel::kNone;
}

const char* levelName(LogLevel level) {
  switch (level) {
    case LogLevel::kVersion: return "VERSION";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kTrace: return "TRACE";
    default: return "";
  }
}

struct Sink {
  std::mutex mutex;
  FILE* file = stderr;
  Sink() {
    if (const char* path = std::getenv(params::kDebugFile.name)) {
      if (FILE* opened = std::fopen(path, "a")) file = opened;
    }
  }
};

Sink& sink() {
  static Sink instance;
  return instance;
}

void vlog(LogLevel level, const char* fmt, va_list args, bool evenWhenUnset = false) {
  const bool unset = std::getenv(params::kDebug.name) == nullptr;
  if (level == LogLevel::kNone || (level > logLevel() && !(evenWhenUnset && unset))) return;
  char text[1024];
  std::vsnprintf(text, sizeof(text), fmt, args);
  Sink& out = sink();
  std::lock_guard<std::mutex> lock(out.mutex);
  std::fprintf(out.file, "nccl-moe %d %s %s\n", static_cast<int>(getpid()), levelName(level), text);
  std::fflush(out.file);
}

}  // namespace

LogLevel logLevel() {
  static const LogLevel level = parseLevel(std::getenv(params::kDebug.name));
  return level;
}

void logMessage(LogLevel level, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vlog(level, fmt, args);
  va_end(args);
}

void logWarn(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vlog(LogLevel::kWarn, fmt, args);
  va_end(args);
}

void logInfo(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vlog(LogLevel::kInfo, fmt, args);
  va_end(args);
}

void logWarnByDefault(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vlog(LogLevel::kWarn, fmt, args, /*evenWhenUnset=*/true);
  va_end(args);
}

}  // namespace nccl_moe
