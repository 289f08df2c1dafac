// Tuner ABI v4 (NCCL 2.24-2.27, symbol ncclTunerPlugin_v4): v3 plus regBuff, "the user buffer can
// be registered", before nChannels.
#pragma once

#include "plugin/tuner_abi/common.h"

namespace nccl_moe::tuner_abi {

struct TunerV4 {
  const char* name;
  ncclResult_t (*init)(size_t nRanks, size_t nNodes, Logger logger, void** context);
  ncclResult_t (*getCollInfo)(void* context, int collType, size_t nBytes, int numPipeOps,
                              float** costTable, int numAlgo, int numProto, int regBuff,
                              int* nChannels);
  ncclResult_t (*destroy)(void* context);
};

constexpr const char* kSymbolV4 = "ncclTunerPlugin_v4";

}  // namespace nccl_moe::tuner_abi
