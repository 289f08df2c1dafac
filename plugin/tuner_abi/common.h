// What every version of NCCL's tuner-plugin ABI shares: the logger NCCL passes to init, the
// values of the enums it passes as int, and the shape of its cost table. Declared here from NCCL's
// documented layout (ext-tuner docs and plugin headers); only the layout matters.
#pragma once

#include <nccl.h>

#include <cstddef>
#include <cstdint>

namespace nccl_moe::tuner_abi {

// ncclDebugLogLevel values.
enum LogLevel : int { kLogNone = 0, kLogVersion = 1, kLogWarn = 2, kLogInfo = 3, kLogAbort = 4, kLogTrace = 5 };
// ncclDebugLogSubSys bits this plugin logs under.
constexpr unsigned long kSubsysInit = 0x1;
constexpr unsigned long kSubsysTuning = 0x40;
constexpr unsigned long kSubsysEnv = 0x80;

// ncclDebugLogger_t: NCCL's logger; it filters by NCCL_DEBUG / NCCL_DEBUG_SUBSYS itself. (NCCL
// declares the level as its enum, which has int's size and passing convention.)
using Logger = void (*)(int level, unsigned long flags, const char* file, int line, const char* fmt, ...);

// ncclFunc_t values (collectives the tuner is asked about).
enum CollType : int {
  kBroadcast = 0,
  kReduce = 1,
  kAllGather = 2,
  kReduceScatter = 3,
  kAllReduce = 4,
};

// Shape of the cost table NCCL passes (float [numAlgo][numProto]); -1 marks an ignored entry.
constexpr int kNumAlgorithms = 7;  // Tree, Ring, CollNetDirect, CollNetChain, NVLS, NVLSTree, PAT
constexpr int kNumProtocols = 3;   // LL, LL128, Simple
constexpr float kIgnoredCost = -1.0f;

}  // namespace nccl_moe::tuner_abi
