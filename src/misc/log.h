// Logging gated by NCCL_MOE_DEBUG (VERSION, WARN, INFO, TRACE), in the shape of NCCL_DEBUG, to
// stderr or to NCCL_MOE_DEBUG_FILE.
#pragma once

namespace nccl_moe {

enum class LogLevel { kNone = 0, kVersion = 1, kWarn = 2, kInfo = 3, kTrace = 4 };

LogLevel logLevel();
void logMessage(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void logWarn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void logInfo(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// A warning the user must see even when NCCL_MOE_DEBUG is unset (a setting that was ignored):
// printed unless NCCL_MOE_DEBUG explicitly asks for less than WARN.
void logWarnByDefault(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace nccl_moe
