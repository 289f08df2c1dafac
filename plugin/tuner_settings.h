// What the tuner reads from the environment at each communicator's init (NCCL_MOE_* variables;
// defaults in one place, as src/misc/env.h does for the library).
#pragma once

#include <string>
#include <vector>

namespace nccl_moe {

struct TunerEnvDefaults {
  static constexpr int kNcclMaxChannels = 0;  // 0: no explicit cap
  static constexpr int kOverlapNccl = 0;      // 0: MoE kernels do not run beside NCCL's
  static constexpr int kChannelLimit = 64;    // NCCL's MAXCHANNELS: larger caps mean nothing
};

struct TunerSettings {
  int ncclMaxChannels = TunerEnvDefaults::kNcclMaxChannels;  // NCCL_MOE_NCCL_MAX_CHANNELS
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
