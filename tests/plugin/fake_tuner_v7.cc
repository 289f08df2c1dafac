// A v7 tuner plugin for the chaining tests: v6's behaviour, and it marks the fifth
// compute-capability row of the constants (which only v7 has) and one shared value, so a test sees
// which table reached it and what came back.
#include "fake_tuner_state.h"
#include "plugin/tuner_abi.h"

namespace {

using namespace nccl_moe::tuner_abi;

ncclResult_t init(void** context, uint64_t commId, size_t nRanks, size_t, Logger, NvlDomainInfoV7* nvlDomainInfo,
                  TunerConstantsV7* constants) {
  if (fake_tuner::failing("init")) return ncclInternalError;
  if (nvlDomainInfo == nullptr || constants == nullptr) return ncclInvalidArgument;
  ++fakeTunerInitCalls;
  fakeTunerLastCommId = commId;
  fakeTunerLastRanks = nRanks;
  constants->llMaxBws[4][0] += 100.0;
  constants->llMaxBws[0][0] += 1.0;
  *context = &fake_tuner::contextToken;
  return ncclSuccess;
}

ncclResult_t getChunkSize(void*, int, size_t, int, int, int, size_t* chunkSize) {
  *chunkSize *= 3;
  return ncclSuccess;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const TunerV7 ncclTunerPlugin_v7 = {
    "fake-v7", init, fake_tuner::countedCollInfo, fake_tuner::countedFinalize, getChunkSize};
