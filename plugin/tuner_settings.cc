#include "tuner_settings.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include "core/env.h"

namespace nccl_moe {

namespace {

// envInt's acceptance test, repeated only to know whether it fell back (it logs, but does not
// say so): a set, non-empty value that is not a whole integer in [lo, hi].
bool rejectedByEnvInt(const char* name, int64_t lo, int64_t hi) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return false;
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 0);
  return errno != 0 || end == text || *end != '\0' || value < lo || value > hi;
}

int readInt(const char* name, int fallback, int lo, int hi, TunerSettings* settings) {
  if (rejectedByEnvInt(name, lo, hi)) {
    settings->rejected.push_back(std::string(name) + "=\"" + std::getenv(name) + "\"");
  }
  return static_cast<int>(envInt(name, fallback, lo, hi));
}

}  // namespace

TunerSettings readTunerSettings() {
  TunerSettings settings;
  settings.ncclMaxChannels = readInt("NCCL_MOE_NCCL_MAX_CHANNELS", TunerEnvDefaults::kNcclMaxChannels,
                                     0, TunerEnvDefaults::kChannelLimit, &settings);
  settings.overlapNccl = readInt("NCCL_MOE_OVERLAP_NCCL", TunerEnvDefaults::kOverlapNccl, 0, 1,
                                 &settings) == 1;
  settings.dispatchSms = readInt("NCCL_MOE_DISPATCH_SMS", EnvDefaults::kDispatchSms, 1, 1024, &settings);
  settings.combineSms = readInt("NCCL_MOE_COMBINE_SMS", EnvDefaults::kCombineSms, 1, 1024, &settings);
  if (const char* chain = std::getenv("NCCL_MOE_CHAIN_TUNER")) settings.chainTuner = chain;
  return settings;
}

}  // namespace nccl_moe
