// A stand-in for NCCL's logger (ncclDebugLogger_t): records every line it is given.
#pragma once

#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

namespace nccl_moe::testing_support {

struct LoggedLine {
  int level;
  unsigned long flags;
  std::string text;
};

class LogCapture {
 public:
  static LogCapture& instance() {
    static LogCapture capture;
    return capture;
  }
  static void logger(int level, unsigned long flags, const char*, int, const char* fmt, ...)
      __attribute__((format(printf, 5, 6))) {
    char text[2048];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(text, sizeof(text), fmt, args);
    va_end(args);
    LogCapture& self = instance();
    std::lock_guard<std::mutex> lock(self.mutex_);
    self.lines_.push_back({level, flags, text});
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    lines_.clear();
  }
  std::vector<LoggedLine> lines() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  // Lines containing `part` (at `level`, or any level when level < 0).
  int count(const std::string& part, int level = -1) const {
    int n = 0;
    for (const LoggedLine& line : lines()) {
      if (line.text.find(part) != std::string::npos && (level < 0 || line.level == level)) ++n;
    }
    return n;
  }
  std::string joined() const {
    std::string all;
    for (const LoggedLine& line : lines()) all += std::to_string(line.level) + ": " + line.text + "\n";
    return all;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<LoggedLine> lines_;
};

}  // namespace nccl_moe::testing_support
