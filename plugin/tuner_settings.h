// What the tuner reads from the environment at each communicator's init (NCCL_MOE_* variables of
// the one table in src/misc/env.h).
#pragma once

#include <string>
#include <vector>

#include "misc/env.h"

namespace nccl_moe {

struct TunerEnvDefaults {
  static constexpr int kChannelLimit = 64;  // NCCL's MAXCHANNELS: larger caps mean nothing
};
static_assert(params::kNcclMaxChannels.hi == TunerEnvDefaults::kChannelLimit,
              "NCCL_MOE_NCCL_MAX_CHANNELS accepts up to NCCL's channel limit");

struct TunerSettings {
  int ncclMaxChannels = static_cast<int>(params::kNcclMaxChannels.fallback);  // NCCL_MOE_NCCL_MAX_CHANNELS
  bool overlapNccl = false;                                   // NCCL_MOE_OVERLAP_NCCL
  int dispatchSms = 0;                                        // NCCL_MOE_DISPATCH_SMS
  int combineSms = 0;                                         // NCCL_MOE_COMBINE_SMS
  std::string chainTuner;                                     // NCCL_MOE_CHAIN_TUNER
  // `NAME="text"` for every variable whose value was rejected (a default was used instead), so
  // the plugin can repeat the warning through NCCL's own logger.
  std::vector<std::string> rejected;
};

// Reads the variables now (not cached: each communicator sees the environment of its init).
// Bad values are logged by envInt (NCCL_MOE_DEBUG=WARN) and replaced by their defaults.
TunerSettings readTunerSettings();

}  // namespace nccl_moe
