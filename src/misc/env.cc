#include "misc/env.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>

#include "misc/log.h"
#include "misc/status.h"

namespace nccl_moe {

namespace {

// "NAME=value" pairs already logged or warned about: a variable read on every call says it once.
bool firstTimeFor(const std::string& setting) {
  static std::mutex mutex;
  static std::set<std::string> said;
  std::lock_guard<std::mutex> lock(mutex);
  return said.insert(setting).second;
}

}  // namespace

int64_t envInt(const char* name, int64_t fallback, int64_t lo, int64_t hi, bool* rejected) {
  if (rejected != nullptr) *rejected = false;
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 0);
  const bool first = firstTimeFor(std::string(name) + "=" + text);
  if (errno != 0 || end == text || *end != '\0' || value < lo || value > hi) {
    if (rejected != nullptr) *rejected = true;
    if (first)
      logWarnByDefault("%s=\"%.64s\" is not an integer in [%lld, %lld]; ignored, using %lld", name, text,
                       (long long)lo, (long long)hi, (long long)fallback);
    return fallback;
  }
  if (first) logInfo("%s set by environment to %lld", name, value);
  return value;
}

int64_t readParam(const IntParam& param, bool* rejected) {
  return envInt(param.name, param.fallback, param.lo, param.hi, rejected);
}

int64_t readParam(const IntParam& param, int64_t fallback, int64_t lo, int64_t hi, bool* rejected) {
  return envInt(param.name, fallback, lo, hi, rejected);
}

const char* readParam(const TextParam& param) {
  const char* text = std::getenv(param.name);
  if (text != nullptr && *text != '\0' && firstTimeFor(std::string(param.name) + "=" + text))
    logInfo("%s set by environment to \"%.200s\"", param.name, text);
  return text;
}

std::vector<std::string> paramTable() {
  std::vector<std::string> lines;
  auto range = [](const IntParam& p) {
    return std::to_string(p.lo) + ".." + (p.hi == INT_MAX ? std::string("INT_MAX") : std::to_string(p.hi));
  };
  for (const IntParam* p : {&params::kTimeoutMs, &params::kDispatchSms, &params::kCombineSms,
                            &params::kCombineWindowTokens, &params::kDomainSize, &params::kNetChunks,
                            &params::kTopology, &params::kLayoutEngine, &params::kLowLatencyTrace,
                            &params::kNcclMaxChannels, &params::kOverlapNccl})
    lines.push_back(format("%-28s default %-8s range %-12s %s", p->name,
                           p->shownDefault ? p->shownDefault : std::to_string(p->fallback).c_str(), range(*p).c_str(),
                           p->doc));
  for (const TextParam* p : {&params::kDebug, &params::kDebugFile, &params::kChainTuner})
    lines.push_back(format("%-28s default %-8s %-18s %s", p->name, p->fallback, "", p->doc));
  return lines;
}

}  // namespace nccl_moe
