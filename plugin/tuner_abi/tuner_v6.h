// Tuner ABI v6 (NCCL 2.30, symbol ncclTunerPlugin_v6; NCCL's development tree moved on to v7): v5
// plus getChunkSize, which may change the chunk size NCCL computed for the algorithm, protocol and
// channels it chose (optional: NULL keeps NCCL's). The domain info and constants are v5's.
#pragma once

#include "plugin/tuner_abi/tuner_v5.h"

namespace nccl_moe::tuner_abi {

using NvlDomainInfoV6 = NvlDomainInfoV5;
using TunerConstantsV6 = TunerConstantsV5;

struct TunerV6 {
  const char* name;
  ncclResult_t (*init)(void** context, uint64_t commId, size_t nRanks, size_t nNodes, Logger logger,
                       NvlDomainInfoV6* nvlDomainInfo, TunerConstantsV6* constants);
  ncclResult_t (*getCollInfo)(void* context, int collType, size_t nBytes, int numPipeOps,
                              float** costTable, int numAlgo, int numProto, int regBuff,
                              int* nChannels);
  ncclResult_t (*finalize)(void* context);
  // chunkSize: in/out, NCCL's value on entry; NCCL clamps what comes back to its buffers.
  ncclResult_t (*getChunkSize)(void* context, int collType, size_t nBytes, int algorithm,
                               int protocol, int nChannels, size_t* chunkSize);
};

constexpr const char* kSymbolV6 = "ncclTunerPlugin_v6";

}  // namespace nccl_moe::tuner_abi
