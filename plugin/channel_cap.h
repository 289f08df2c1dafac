// The SM-budget policy: how many channels (one CTA, hence one SM, each) NCCL's collectives may
// use on a communicator, and the per-call answer given to NCCL. Pure arithmetic, no CUDA.
#pragma once

#include <cstddef>
#include <string>

#include "tuner_settings.h"

namespace nccl_moe {

struct ChannelCap {
  int channels = 0;    // 0: no cap, NCCL's choices are left alone
  std::string reason;  // for the init summary, e.g. "NCCL_MOE_NCCL_MAX_CHANNELS=8"
};

// Below this many bytes per channel NCCL itself uses fewer channels; a capped answer does the same
// so that a cap never raises the channel count of a small collective.
constexpr size_t kBytesPerChannel = size_t{32} << 10;

// NCCL_MOE_NCCL_MAX_CHANNELS wins; otherwise, with NCCL_MOE_OVERLAP_NCCL=1, NCCL gets the SMs the
// larger MoE budget leaves on the GPU (`deviceSms`, 0 when unknown: then no cap). Otherwise none.
ChannelCap decideChannelCap(const TunerSettings& settings, int deviceSms);

// The nChannels answer for one collective: 0 (NCCL decides) without a cap; else the cap, reduced
// for small sizes, and never above what a chained tuner asked for (`chainedChannels`, 0 = none).
int channelsForCollective(int cap, size_t nBytes, int chainedChannels);

}  // namespace nccl_moe
