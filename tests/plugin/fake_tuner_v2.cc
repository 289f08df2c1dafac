// A v2 tuner plugin for the chaining tests: answers RING/SIMPLE and FAKE_TUNER_CHANNELS directly.
#include "fake_tuner_state.h"
#include "plugin/tuner_abi.h"

namespace {

using namespace nccl_moe::tuner_abi;

ncclResult_t init(size_t nRanks, size_t, Logger, void** context) {
  if (fake_tuner::failing("init")) return ncclInternalError;
  ++fakeTunerInitCalls;
  fakeTunerLastRanks = nRanks;
  *context = &fake_tuner::contextToken;
  return ncclSuccess;
}

ncclResult_t getCollInfo(void*, int, size_t, int, int, int, int* algorithm, int* protocol,
                         int* nChannels) {
  ++fakeTunerCollCalls;
  *algorithm = 1;  // RING
  *protocol = 2;   // SIMPLE
  *nChannels = fake_tuner::channelsAnswer();
  return ncclSuccess;
}

ncclResult_t destroy(void*) {
  ++fakeTunerFinalizeCalls;
  return ncclSuccess;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const TunerV2 ncclTunerPlugin_v2 = {
    "fake-v2", init, getCollInfo, destroy};
