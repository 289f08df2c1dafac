// Reading NCCL's cost table (float [numAlgo][numProto] of estimated times, negative = not usable;
// passed as float** but laid out contiguously) the way NCCL reads it after the tuner returns.
#pragma once

namespace nccl_moe {

// NCCL_ALGO_* rows that need special hardware.
constexpr int kAlgoCollNetDirect = 2;
constexpr int kAlgoCollNetChain = 3;
constexpr int kAlgoNvls = 4;
constexpr int kAlgoNvlsTree = 5;

// The entry NCCL will pick (lowest non-negative time); false when no entry is usable.
bool cheapestEntry(const float* costs, int numAlgo, int numProto, int* algorithm, int* protocol);

// Whether any protocol of algorithms [firstAlgo, lastAlgo] is usable.
bool anyUsable(const float* costs, int numAlgo, int numProto, int firstAlgo, int lastAlgo);

// NCCL trusts a tuner's channel count as is for CollNet (its planner clamps every other algorithm
// to the communicator's channels), so a cap, which may exceed them, is only given elsewhere.
bool channelAnswerIsSafe(const float* costs, int numAlgo, int numProto);

}  // namespace nccl_moe
