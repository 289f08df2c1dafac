// A v5 tuner plugin for the chaining tests (also the layout of v6's first four fields).
#include "fake_tuner_state.h"
#include "plugin/tuner_abi.h"

namespace {

using namespace nccl_moe::tuner_abi;

ncclResult_t init(void** context, uint64_t commId, size_t nRanks, size_t, Logger,
                  NvlDomainInfo* nvlDomainInfo, TunerConstants* constants) {
  if (fake_tuner::failing("init")) return ncclInternalError;
  if (nvlDomainInfo == nullptr || constants == nullptr) return ncclInvalidArgument;
  ++fakeTunerInitCalls;
  fakeTunerLastCommId = commId;
  fakeTunerLastRanks = nRanks;
  *context = &fake_tuner::contextToken;
  return ncclSuccess;
}

ncclResult_t getCollInfo(void* context, int, size_t, int, float** costTable, int numAlgo,
                         int numProto, int, int* nChannels) {
  if (context != &fake_tuner::contextToken) return ncclInvalidArgument;
  ++fakeTunerCollCalls;
  fake_tuner::preferRingSimple(costTable, numAlgo, numProto);
  if (fake_tuner::failing("coll")) return ncclInternalError;
  *nChannels = fake_tuner::channelsAnswer();
  return ncclSuccess;
}

ncclResult_t finalize(void* context) {
  if (context != &fake_tuner::contextToken) return ncclInvalidArgument;
  ++fakeTunerFinalizeCalls;
  return fake_tuner::failing("finalize") ? ncclInternalError : ncclSuccess;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const TunerV5 ncclTunerPlugin_v5 = {
    "fake-v5", init, getCollInfo, finalize};
