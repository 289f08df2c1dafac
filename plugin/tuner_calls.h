// One version-independent shape of the tuner's calls: every exported ABI version converts its
// arguments into these, and a chained tuner converts them back into its own version.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tuner_abi.h"

namespace nccl_moe {

struct InitCall {
  int abiVersion = 0;      // the ncclTunerPlugin_v<N> NCCL called
  bool hasCommId = false;  // v5+
  uint64_t commId = 0;
  size_t ranks = 0;
  size_t nodes = 0;
  tuner_abi::Logger logger = nullptr;
  tuner_abi::NvlDomainInfo* nvlDomains = nullptr;  // v5+, else nullptr
  tuner_abi::TunerConstants* constants = nullptr;  // v5+, in/out, else nullptr
  // v7: NCCL's own table (fifth compute-capability row included); `constants` then points to a copy
  // of its shared rows, copied back after init.
  tuner_abi::TunerConstantsV7* constantsV7 = nullptr;
};

struct CollCall {
  int collType = 0;
  size_t nBytes = 0;
  int numPipeOps = 0;
  // v3+: NCCL's float [numAlgo][numProto] cost table, passed as float** but laid out contiguously.
  float** costTable = nullptr;
  int numAlgo = 0;
  int numProto = 0;
  int regBuff = 0;
  // v2 only: what NCCL supports, and where the chosen algorithm/protocol go (-1: NCCL decides).
  int collNetSupport = 0;
  int nvlsSupport = 0;
  int* algorithm = nullptr;
  int* protocol = nullptr;

  float* costs() const { return reinterpret_cast<float*>(costTable); }
};

}  // namespace nccl_moe
