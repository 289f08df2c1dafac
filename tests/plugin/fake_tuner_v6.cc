// A v6 tuner plugin for the chaining tests: v5's behaviour plus a chunk size that doubles.
#include "fake_tuner_state.h"
#include "plugin/tuner_abi.h"

namespace {

using namespace nccl_moe::tuner_abi;

ncclResult_t init(void** context, uint64_t commId, size_t nRanks, size_t, Logger, NvlDomainInfo*,
                  TunerConstants*) {
  if (fake_tuner::failing("init")) return ncclInternalError;
  ++fakeTunerInitCalls;
  fakeTunerLastCommId = commId;
  fakeTunerLastRanks = nRanks;
  *context = &fake_tuner::contextToken;
  return ncclSuccess;
}

ncclResult_t getChunkSize(void*, int, size_t, int, int, int, size_t* chunkSize) {
  *chunkSize *= 2;
  return ncclSuccess;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const TunerV6 ncclTunerPlugin_v6 = {
    "fake-v6", init, fake_tuner::countedCollInfo, fake_tuner::countedFinalize, getChunkSize};
