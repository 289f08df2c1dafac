// Shared by the fake tuner modules the plugin tests chain to: call counters the tests read with
// dlsym, and behaviour chosen by environment variables at call time:
//   FAKE_TUNER_FAIL=init|coll|finalize   that call returns ncclInternalError
//   FAKE_TUNER_CHANNELS=<n>              its nChannels answer (default 3)
#pragma once

#include <nccl.h>

#include <cstddef>

extern "C" {
__attribute__((visibility("default"))) extern int fakeTunerInitCalls;
__attribute__((visibility("default"))) extern int fakeTunerCollCalls;
__attribute__((visibility("default"))) extern int fakeTunerFinalizeCalls;
__attribute__((visibility("default"))) extern unsigned long long fakeTunerLastCommId;
__attribute__((visibility("default"))) extern size_t fakeTunerLastRanks;
}

namespace fake_tuner {

// The context the fake hands out; finalize checks it gets it back.
inline int contextToken = 0;

bool failing(const char* call);
int channelsAnswer();

// What every version's getCollInfo does to a cost table: RING/SIMPLE becomes the cheapest entry
// (when NCCL did not ignore it). Done before a failure too, so the caller must undo it.
void preferRingSimple(float** costTable, int numAlgo, int numProto);

// The getCollInfo (v4-v7 arguments) and finalize of the v6 and v7 fakes: count the call, prefer
// RING/SIMPLE, answer channelsAnswer(); never fail.
ncclResult_t countedCollInfo(void* context, int collType, size_t nBytes, int numPipeOps, float** costTable,
                             int numAlgo, int numProto, int regBuff, int* nChannels);
ncclResult_t countedFinalize(void* context);

}  // namespace fake_tuner
