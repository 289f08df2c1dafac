// Tuner ABI v5 (NCCL 2.28-2.29, symbol ncclTunerPlugin_v5): init takes the context first and also
// gets the communicator id, the NVLink domains and NCCL's latency/bandwidth constants (in/out);
// getCollInfo is v4's; destroy is renamed finalize.
#pragma once

#include "plugin/tuner_abi/common.h"

namespace nccl_moe::tuner_abi {

// ncclNvlDomainInfo_v5_t.
struct NvlDomainInfoV5 {
  int nNvlDomains;
  int minRanksPerNvlDomain;
  int maxRanksPerNvlDomain;
};

// ncclTunerConstants_v5_t: NCCL's model, doubles, indexed [algorithm][protocol], links
// [NVLink, PCI, network], compute capabilities [Volta, Ampere, Hopper, Blackwell] and node scales
// [1, 2, 4+ nodes].
constexpr int kNumHwLinksV5 = 3;
constexpr int kNumComputeCapsV5 = 4;
constexpr int kNumTuningScalesV5 = 3;
struct TunerConstantsV5 {
  double baseLatencies[kNumAlgorithms][kNumProtocols];
  double hwLatencies[kNumHwLinksV5][kNumAlgorithms][kNumProtocols];
  double llMaxBws[kNumComputeCapsV5][kNumTuningScalesV5];
  double perChMaxRingLL128Bws[kNumComputeCapsV5][kNumTuningScalesV5];
  double perChMaxTreeLL128Bws[kNumComputeCapsV5][kNumTuningScalesV5];
  double perChMaxTreeBws[kNumComputeCapsV5][kNumTuningScalesV5];
  double perChMaxNVLSTreeBws[kNumComputeCapsV5][kNumTuningScalesV5];
};

struct TunerV5 {
  const char* name;
  ncclResult_t (*init)(void** context, uint64_t commId, size_t nRanks, size_t nNodes, Logger logger,
                       NvlDomainInfoV5* nvlDomainInfo, TunerConstantsV5* constants);
  ncclResult_t (*getCollInfo)(void* context, int collType, size_t nBytes, int numPipeOps,
                              float** costTable, int numAlgo, int numProto, int regBuff,
                              int* nChannels);
  ncclResult_t (*finalize)(void* context);
};

constexpr const char* kSymbolV5 = "ncclTunerPlugin_v5";

}  // namespace nccl_moe::tuner_abi
