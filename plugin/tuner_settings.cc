#include "tuner_settings.h"

#include <cstdint>
#include <cstdlib>

#include "misc/env.h"

namespace nccl_moe {

namespace {

int readInt(const IntParam& param, TunerSettings* settings) {
  bool rejected = false;
  const int value = static_cast<int>(readParam(param, &rejected));
  if (rejected) settings->rejected.push_back(std::string(param.name) + "=\"" + std::getenv(param.name) + "\"");
  return value;
}

}  // namespace

TunerSettings readTunerSettings() {
  TunerSettings settings;
  settings.ncclMaxChannels = readInt(params::kNcclMaxChannels, &settings);
  settings.overlapNccl = readInt(params::kOverlapNccl, &settings) == 1;
  settings.dispatchSms = readInt(params::kDispatchSms, &settings);
  settings.combineSms = readInt(params::kCombineSms, &settings);
  if (const char* chain = readParam(params::kChainTuner)) settings.chainTuner = chain;
  return settings;
}

}  // namespace nccl_moe
