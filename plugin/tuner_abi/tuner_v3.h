// Tuner ABI v3 (NCCL 2.22-2.23, symbol ncclTunerPlugin_v3): the plugin edits NCCL's cost table
// (float [numAlgo][numProto], passed as float** but laid out contiguously) instead of choosing.
#pragma once

#include "plugin/tuner_abi/common.h"

namespace nccl_moe::tuner_abi {

struct TunerV3 {
  const char* name;
  ncclResult_t (*init)(size_t nRanks, size_t nNodes, Logger logger, void** context);
  ncclResult_t (*getCollInfo)(void* context, int collType, size_t nBytes, int numPipeOps,
                              float** costTable, int numAlgo, int numProto, int* nChannels);
  ncclResult_t (*destroy)(void* context);
};

constexpr const char* kSymbolV3 = "ncclTunerPlugin_v3";

}  // namespace nccl_moe::tuner_abi
