#include "cost_table.h"

namespace nccl_moe {

bool cheapestEntry(const float* costs, int numAlgo, int numProto, int* algorithm, int* protocol) {
  float best = -1.0f;
  for (int a = 0; a < numAlgo; ++a) {
    for (int p = 0; p < numProto; ++p) {
      const float cost = costs[a * numProto + p];
      if (cost >= 0.0f && (best < 0.0f || cost < best)) {
        best = cost;
        *algorithm = a;
        *protocol = p;
      }
    }
  }
  return best >= 0.0f;
}

bool anyUsable(const float* costs, int numAlgo, int numProto, int firstAlgo, int lastAlgo) {
  for (int a = firstAlgo; a <= lastAlgo && a < numAlgo; ++a) {
    for (int p = 0; p < numProto; ++p) {
      if (costs[a * numProto + p] >= 0.0f) return true;
    }
  }
  return false;
}

bool channelAnswerIsSafe(const float* costs, int numAlgo, int numProto) {
  if (costs == nullptr) return true;  // v2: no table, no CollNet choice made by the tuner
  int algorithm = -1, protocol = -1;
  if (!cheapestEntry(costs, numAlgo, numProto, &algorithm, &protocol)) return true;
  return algorithm != kAlgoCollNetDirect && algorithm != kAlgoCollNetChain;
}

}  // namespace nccl_moe
