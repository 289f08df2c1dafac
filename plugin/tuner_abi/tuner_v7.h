// Tuner ABI v7 (NCCL's development tree after 2.30.7, symbol ncclTunerPlugin_v7): v6's functions
// and domain info; the constants gain a fifth compute-capability class (their bandwidth tables
// are [5][scales] instead of [4][scales]), so init takes a table of its own layout.
#pragma once

#include "plugin/tuner_abi/tuner_v6.h"

namespace nccl_moe::tuner_abi {

using NvlDomainInfoV7 = NvlDomainInfoV5;

constexpr int kNumComputeCapsV7 = 5;
struct TunerConstantsV7 {
  double baseLatencies[kNumAlgorithms][kNumProtocols];
  double hwLatencies[kNumHwLinksV5][kNumAlgorithms][kNumProtocols];
  double llMaxBws[kNumComputeCapsV7][kNumTuningScalesV5];
  double perChMaxRingLL128Bws[kNumComputeCapsV7][kNumTuningScalesV5];
  double perChMaxTreeLL128Bws[kNumComputeCapsV7][kNumTuningScalesV5];
  double perChMaxTreeBws[kNumComputeCapsV7][kNumTuningScalesV5];
  double perChMaxNVLSTreeBws[kNumComputeCapsV7][kNumTuningScalesV5];
};

struct TunerV7 {
  const char* name;
  ncclResult_t (*init)(void** context, uint64_t commId, size_t nRanks, size_t nNodes, Logger logger,
                       NvlDomainInfoV7* nvlDomainInfo, TunerConstantsV7* constants);
  ncclResult_t (*getCollInfo)(void* context, int collType, size_t nBytes, int numPipeOps,
                              float** costTable, int numAlgo, int numProto, int regBuff,
                              int* nChannels);
  ncclResult_t (*finalize)(void* context);
  ncclResult_t (*getChunkSize)(void* context, int collType, size_t nBytes, int algorithm,
                               int protocol, int nChannels, size_t* chunkSize);
};

constexpr const char* kSymbolV7 = "ncclTunerPlugin_v7";

// Between the v7 table and the v5 one (v5 and v6 tuners): the latencies and the first four
// compute-capability rows are the same values; the fifth row exists only in v7.
void copyConstants(const TunerConstantsV7& from, TunerConstantsV5* to);
void copyConstants(const TunerConstantsV5& from, TunerConstantsV7* to);  // the fifth row untouched

}  // namespace nccl_moe::tuner_abi
