// NCCL's tuner-plugin ABI, declared here from its documented layout (NCCL's ext-tuner docs and
// plugin headers, versions 2 to 6). NCCL dlsym()s "ncclTunerPlugin_v<N>", newest first (2.28 tries
// v5, v4, v3, v2; 2.30 adds v6), and reads the struct the symbol names. Only the layout matters:
// field order, pointer-sized members, enums passed as int.
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

// ncclDebugLogger_t: NCCL's logger; it filters by NCCL_DEBUG / NCCL_DEBUG_SUBSYS itself.
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

// ncclNvlDomainInfo_v5_t (v5, v6).
struct NvlDomainInfo {
  int nNvlDomains;
  int minRanksPerNvlDomain;
  int maxRanksPerNvlDomain;
};

// ncclTunerConstants_v5_t (v5, v6): NCCL's latency/bandwidth model, in/out at init.
struct TunerConstants {
  double baseLatencies[kNumAlgorithms][kNumProtocols];
  double hwLatencies[3][kNumAlgorithms][kNumProtocols];  // [NVLink, PCI, network]
  double llMaxBws[4][3];                                  // [compute capability][node scale]
  double perChMaxRingLL128Bws[4][3];
  double perChMaxTreeLL128Bws[4][3];
  double perChMaxTreeBws[4][3];
  double perChMaxNVLSTreeBws[4][3];
};

// v2 (NCCL 2.19-2.20): the plugin picks algorithm/protocol directly.
struct TunerV2 {
  const char* name;
  ncclResult_t (*init)(size_t nRanks, size_t nNodes, Logger logger, void** context);
  ncclResult_t (*getCollInfo)(void* context, int collType, size_t nBytes, int collNetSupport,
                              int nvlsSupport, int numPipeOps, int* algorithm, int* protocol,
                              int* nChannels);
  ncclResult_t (*destroy)(void* context);
};

// v3: the plugin edits NCCL's cost table (float* rows, numAlgo x numProto).
struct TunerV3 {
  const char* name;
  ncclResult_t (*init)(size_t nRanks, size_t nNodes, Logger logger, void** context);
  ncclResult_t (*getCollInfo)(void* context, int collType, size_t nBytes, int numPipeOps,
                              float** costTable, int numAlgo, int numProto, int* nChannels);
  ncclResult_t (*destroy)(void* context);
};

// v4: v3 plus "the user buffer can be registered".
struct TunerV4 {
  const char* name;
  ncclResult_t (*init)(size_t nRanks, size_t nNodes, Logger logger, void** context);
  ncclResult_t (*getCollInfo)(void* context, int collType, size_t nBytes, int numPipeOps,
                              float** costTable, int numAlgo, int numProto, int regBuff,
                              int* nChannels);
  ncclResult_t (*destroy)(void* context);
};

// v5 (NCCL 2.27-2.28): init gets the communicator id, NVLink domains and NCCL's constants.
struct TunerV5 {
  const char* name;
  ncclResult_t (*init)(void** context, uint64_t commId, size_t nRanks, size_t nNodes, Logger logger,
                       NvlDomainInfo* nvlDomainInfo, TunerConstants* constants);
  ncclResult_t (*getCollInfo)(void* context, int collType, size_t nBytes, int numPipeOps,
                              float** costTable, int numAlgo, int numProto, int regBuff,
                              int* nChannels);
  ncclResult_t (*finalize)(void* context);
};

// v6 (NCCL 2.30): v5 plus an optional chunk-size override (NULL allowed).
struct TunerV6 {
  const char* name;
  ncclResult_t (*init)(void** context, uint64_t commId, size_t nRanks, size_t nNodes, Logger logger,
                       NvlDomainInfo* nvlDomainInfo, TunerConstants* constants);
  ncclResult_t (*getCollInfo)(void* context, int collType, size_t nBytes, int numPipeOps,
                              float** costTable, int numAlgo, int numProto, int regBuff,
                              int* nChannels);
  ncclResult_t (*finalize)(void* context);
  ncclResult_t (*getChunkSize)(void* context, int collType, size_t nBytes, int algorithm,
                               int protocol, int nChannels, size_t* chunkSize);
};

// Symbol names, newest first (the order NCCL tries them in).
constexpr const char* kSymbolV6 = "ncclTunerPlugin_v6";
constexpr const char* kSymbolV5 = "ncclTunerPlugin_v5";
constexpr const char* kSymbolV4 = "ncclTunerPlugin_v4";
constexpr const char* kSymbolV3 = "ncclTunerPlugin_v3";
constexpr const char* kSymbolV2 = "ncclTunerPlugin_v2";

// The name this plugin reports in every version's struct (NCCL logs "Using <name> (v5)").
constexpr const char* kPluginName = "nccl-moe";

}  // namespace nccl_moe::tuner_abi
