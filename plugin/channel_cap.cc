#include "channel_cap.h"

#include <algorithm>

namespace nccl_moe {

ChannelCap decideChannelCap(const TunerSettings& settings, int deviceSms) {
  ChannelCap cap;
  if (settings.ncclMaxChannels > 0) {
    cap.channels = settings.ncclMaxChannels;
    cap.reason = "NCCL_MOE_NCCL_MAX_CHANNELS=" + std::to_string(settings.ncclMaxChannels);
    return cap;
  }
  if (!settings.overlapNccl) {
    cap.reason = "no cap (NCCL_MOE_NCCL_MAX_CHANNELS unset, NCCL_MOE_OVERLAP_NCCL=0)";
    return cap;
  }
  if (deviceSms <= 0) {
    cap.reason = "no cap (NCCL_MOE_OVERLAP_NCCL=1 but the GPU's SM count is unknown)";
    return cap;
  }
  const int moeSms = std::max(settings.dispatchSms, settings.combineSms);
  const int left = std::max(1, deviceSms - moeSms);
  cap.channels = std::min(left, TunerEnvDefaults::kChannelLimit);
  cap.reason = std::to_string(deviceSms) + " SMs - " + std::to_string(moeSms) +
               " MoE SMs (NCCL_MOE_OVERLAP_NCCL=1)";
  return cap;
}

int channelsForCollective(int cap, size_t nBytes, int chainedChannels) {
  if (cap <= 0) return chainedChannels;
  if (chainedChannels > 0) return std::min(cap, chainedChannels);
  const size_t needed = std::max<size_t>(1, (nBytes + kBytesPerChannel - 1) / kBytesPerChannel);
  return static_cast<int>(std::min<size_t>(static_cast<size_t>(cap), needed));
}

}  // namespace nccl_moe
