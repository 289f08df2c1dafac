#include "fake_tuner_state.h"

#include <cstdlib>
#include <cstring>

int fakeTunerInitCalls = 0;
int fakeTunerCollCalls = 0;
int fakeTunerFinalizeCalls = 0;
unsigned long long fakeTunerLastCommId = 0;
size_t fakeTunerLastRanks = 0;

namespace fake_tuner {

bool failing(const char* call) {
  const char* fail = std::getenv("FAKE_TUNER_FAIL");
  return fail != nullptr && std::strcmp(fail, call) == 0;
}

int channelsAnswer() {
  const char* text = std::getenv("FAKE_TUNER_CHANNELS");
  return text != nullptr ? std::atoi(text) : 3;
}

void preferRingSimple(float** costTable, int numAlgo, int numProto) {
  constexpr int kRing = 1, kSimple = 2;
  if (costTable == nullptr || numAlgo <= kRing || numProto <= kSimple) return;
  float* costs = reinterpret_cast<float*>(costTable);
  float& entry = costs[kRing * numProto + kSimple];
  if (entry >= 0.0f) entry = 0.0f;
}

ncclResult_t countedCollInfo(void*, int, size_t, int, float** costTable, int numAlgo, int numProto, int,
                             int* nChannels) {
  ++fakeTunerCollCalls;
  preferRingSimple(costTable, numAlgo, numProto);
  *nChannels = channelsAnswer();
  return ncclSuccess;
}

ncclResult_t countedFinalize(void*) {
  ++fakeTunerFinalizeCalls;
  return ncclSuccess;
}

}  // namespace fake_tuner
