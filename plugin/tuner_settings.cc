#include "tuner_settings.h"

#include <cstdint>
#include <cstdlib>

#include "misc/env.h"

namespace nccl_moe {

namespace {

int readInt(const char* name, int fallback, int lo, int hi, TunerSettings* settings) {
  bool rejected = false;
  const int value = static_cast<int>(envInt(name, fallback, lo, hi, &rejected));
  if (rejected) settings->rejected.push_back(std::string(name) + "=\"" + std::getenv(name) + "\"");
  return value;
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
