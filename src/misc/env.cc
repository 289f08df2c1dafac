#include "misc/env.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>

#include "misc/log.h"

namespace nccl_moe {

namespace {

// "NAME=value" pairs already warned about: a variable read on every call warns once.
bool firstWarningFor(const std::string& setting) {
  static std::mutex mutex;
  static std::set<std::string> warned;
  std::lock_guard<std::mutex> lock(mutex);
  return warned.insert(setting).second;
}

}  // namespace

int64_t envInt(const char* name, int64_t fallback, int64_t lo, int64_t hi, bool* rejected) {
  if (rejected != nullptr) *rejected = false;
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 0);
  if (errno != 0 || end == text || *end != '\0' || value < lo || value > hi) {
    if (rejected != nullptr) *rejected = true;
    if (firstWarningFor(std::string(name) + "=" + text))
      logWarnByDefault("%s=\"%.64s\" is not an integer in [%lld, %lld]; ignored, using %lld", name, text,
                       (long long)lo, (long long)hi, (long long)fallback);
    return fallback;
  }
  return value;
}

int envTimeoutMs() {
  return static_cast<int>(envInt("NCCL_MOE_TIMEOUT_MS", EnvDefaults::kTimeoutMs, 1, INT_MAX));
}
int envDispatchSms() {
  return static_cast<int>(envInt("NCCL_MOE_DISPATCH_SMS", EnvDefaults::kDispatchSms, 1, 1024));
}
int envCombineSms() {
  return static_cast<int>(envInt("NCCL_MOE_COMBINE_SMS", EnvDefaults::kCombineSms, 1, 1024));
}

}  // namespace nccl_moe
