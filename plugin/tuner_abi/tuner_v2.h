// Tuner ABI v2 (NCCL 2.21, symbol ncclTunerPlugin_v2): the plugin picks the algorithm and protocol
// itself. (NCCL 2.19-2.20 used v1, with no per-communicator context; nccl-moe does not serve it.)
#pragma once

#include "plugin/tuner_abi/common.h"

namespace nccl_moe::tuner_abi {

struct TunerV2 {
  const char* name;
  ncclResult_t (*init)(size_t nRanks, size_t nNodes, Logger logger, void** context);
  // algorithm/protocol: -1 on entry; left at -1, NCCL chooses.
  ncclResult_t (*getCollInfo)(void* context, int collType, size_t nBytes, int collNetSupport,
                              int nvlsSupport, int numPipeOps, int* algorithm, int* protocol,
                              int* nChannels);
  ncclResult_t (*destroy)(void* context);
};

constexpr const char* kSymbolV2 = "ncclTunerPlugin_v2";

}  // namespace nccl_moe::tuner_abi
