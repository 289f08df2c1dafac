// The C symbols NCCL looks up in a tuner plugin: ncclTunerPlugin_v7 (NCCL after 2.30.7) down to
// ncclTunerPlugin_v2, each a struct of function pointers in that version's layout
// (tuner_abi.h). Each entry converts its arguments to the version-independent calls of tuner.h.
// libnccl_moe.map exports them next to the ncclMoe* API.
#include <dlfcn.h>

#include <mutex>

#include "tuner.h"
#include "tuner_abi.h"

namespace nccl_moe {
namespace {

using namespace tuner_abi;

// NCCL dlclose()s its tuner when the last communicator is gone. The library also holds the MoE
// API's process-wide state (and a statically linked CUDA runtime), which the framework may be
// using through another handle: keep the one copy mapped for the life of the process.
void pinLibrary() {
  static std::once_flag once;
  std::call_once(once, [] {
    Dl_info info{};
    if (dladdr(reinterpret_cast<const void*>(&pinLibrary), &info) != 0 && info.dli_fname != nullptr) {
      // The reference this takes is never dropped, on purpose.
      dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    }
  });
}

ncclResult_t initOld(int version, size_t nRanks, size_t nNodes, Logger logger, void** context) {
  pinLibrary();
  InitCall call;
  call.abiVersion = version;
  call.ranks = nRanks;
  call.nodes = nNodes;
  call.logger = logger;
  return tunerInit(call, context);
}

ncclResult_t initNew(int version, void** context, uint64_t commId, size_t nRanks, size_t nNodes,
                     Logger logger, NvlDomainInfo* nvlDomainInfo, TunerConstants* constants,
                     TunerConstantsV7* constantsV7 = nullptr) {
  pinLibrary();
  InitCall call;
  call.abiVersion = version;
  call.hasCommId = true;
  call.commId = commId;
  call.ranks = nRanks;
  call.nodes = nNodes;
  call.logger = logger;
  call.nvlDomains = nvlDomainInfo;
  call.constants = constants;
  call.constantsV7 = constantsV7;
  return tunerInit(call, context);
}

ncclResult_t initV2(size_t nRanks, size_t nNodes, Logger logger, void** context) {
  return initOld(2, nRanks, nNodes, logger, context);
}
ncclResult_t initV3(size_t nRanks, size_t nNodes, Logger logger, void** context) {
  return initOld(3, nRanks, nNodes, logger, context);
}
ncclResult_t initV4(size_t nRanks, size_t nNodes, Logger logger, void** context) {
  return initOld(4, nRanks, nNodes, logger, context);
}
ncclResult_t initV5(void** context, uint64_t commId, size_t nRanks, size_t nNodes, Logger logger,
                    NvlDomainInfo* nvlDomainInfo, TunerConstants* constants) {
  return initNew(5, context, commId, nRanks, nNodes, logger, nvlDomainInfo, constants);
}
ncclResult_t initV6(void** context, uint64_t commId, size_t nRanks, size_t nNodes, Logger logger,
                    NvlDomainInfo* nvlDomainInfo, TunerConstants* constants) {
  return initNew(6, context, commId, nRanks, nNodes, logger, nvlDomainInfo, constants);
}

ncclResult_t initV7(void** context, uint64_t commId, size_t nRanks, size_t nNodes, Logger logger,
                    NvlDomainInfoV7* nvlDomainInfo, TunerConstantsV7* constants) {
  // The version-independent call carries v5's table: a copy of the shared rows, copied back.
  if (constants == nullptr) return initNew(7, context, commId, nRanks, nNodes, logger, nvlDomainInfo, nullptr);
  TunerConstants shared{};
  copyConstants(*constants, &shared);
  const ncclResult_t result = initNew(7, context, commId, nRanks, nNodes, logger, nvlDomainInfo, &shared, constants);
  copyConstants(shared, constants);
  return result;
}

ncclResult_t getCollInfoV2(void* context, int collType, size_t nBytes, int collNetSupport,
                           int nvlsSupport, int numPipeOps, int* algorithm, int* protocol,
                           int* nChannels) {
  CollCall call;
  call.collType = collType;
  call.nBytes = nBytes;
  call.numPipeOps = numPipeOps;
  call.collNetSupport = collNetSupport;
  call.nvlsSupport = nvlsSupport;
  call.algorithm = algorithm;
  call.protocol = protocol;
  return tunerGetCollInfo(context, call, nChannels);
}

ncclResult_t getCollInfoV4(void* context, int collType, size_t nBytes, int numPipeOps,
                           float** costTable, int numAlgo, int numProto, int regBuff, int* nChannels) {
  CollCall call;
  call.collType = collType;
  call.nBytes = nBytes;
  call.numPipeOps = numPipeOps;
  call.costTable = costTable;
  call.numAlgo = numAlgo;
  call.numProto = numProto;
  call.regBuff = regBuff;
  return tunerGetCollInfo(context, call, nChannels);
}

ncclResult_t getCollInfoV3(void* context, int collType, size_t nBytes, int numPipeOps,
                           float** costTable, int numAlgo, int numProto, int* nChannels) {
  return getCollInfoV4(context, collType, nBytes, numPipeOps, costTable, numAlgo, numProto, 0, nChannels);
}

ncclResult_t finalize(void* context) { return tunerFinalize(context); }

ncclResult_t getChunkSize(void* context, int collType, size_t nBytes, int algorithm, int protocol,
                          int nChannels, size_t* chunkSize) {
  return tunerGetChunkSize(context, collType, nBytes, algorithm, protocol, nChannels, chunkSize);
}

}  // namespace
}  // namespace nccl_moe

#define NCCL_MOE_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))

NCCL_MOE_PLUGIN_EXPORT const nccl_moe::tuner_abi::TunerV7 ncclTunerPlugin_v7 = {
    nccl_moe::tuner_abi::kPluginName, nccl_moe::initV7, nccl_moe::getCollInfoV4,
    nccl_moe::finalize, nccl_moe::getChunkSize};
NCCL_MOE_PLUGIN_EXPORT const nccl_moe::tuner_abi::TunerV6 ncclTunerPlugin_v6 = {
    nccl_moe::tuner_abi::kPluginName, nccl_moe::initV6, nccl_moe::getCollInfoV4,
    nccl_moe::finalize, nccl_moe::getChunkSize};
NCCL_MOE_PLUGIN_EXPORT const nccl_moe::tuner_abi::TunerV5 ncclTunerPlugin_v5 = {
    nccl_moe::tuner_abi::kPluginName, nccl_moe::initV5, nccl_moe::getCollInfoV4, nccl_moe::finalize};
NCCL_MOE_PLUGIN_EXPORT const nccl_moe::tuner_abi::TunerV4 ncclTunerPlugin_v4 = {
    nccl_moe::tuner_abi::kPluginName, nccl_moe::initV4, nccl_moe::getCollInfoV4, nccl_moe::finalize};
NCCL_MOE_PLUGIN_EXPORT const nccl_moe::tuner_abi::TunerV3 ncclTunerPlugin_v3 = {
    nccl_moe::tuner_abi::kPluginName, nccl_moe::initV3, nccl_moe::getCollInfoV3, nccl_moe::finalize};
NCCL_MOE_PLUGIN_EXPORT const nccl_moe::tuner_abi::TunerV2 ncclTunerPlugin_v2 = {
    nccl_moe::tuner_abi::kPluginName, nccl_moe::initV2, nccl_moe::getCollInfoV2, nccl_moe::finalize};
