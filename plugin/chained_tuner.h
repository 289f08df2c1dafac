// Another tuner plugin, named by NCCL_MOE_CHAIN_TUNER, that nccl-moe forwards every call to (its
// answers first, then nccl-moe's channel cap on top). Whatever ABI version it exports (v2 to v7)
// is driven through the version-independent calls of tuner_calls.h.
#pragma once

#include <memory>
#include <string>

#include "dl_handle.h"
#include "tuner_abi.h"
#include "tuner_calls.h"

namespace nccl_moe {

class ChainedTuner {
 public:
  // Opens `name` like NCCL_TUNER_PLUGIN: a path (contains '/'), a library file name, or a short
  // name tried as libnccl-tuner-<name>.so. nullptr and *error when it cannot be used (not found,
  // no tuner symbol, or nccl-moe itself).
  static std::unique_ptr<ChainedTuner> open(const std::string& name, std::string* error);

  int version() const { return version_; }
  // "<its name> (v<N>, <library>)" for logs.
  const std::string& description() const { return description_; }

  ncclResult_t init(const InitCall& call, void** context) const;
  // Forwards one query; *nChannels gets its channel answer (0: none).
  ncclResult_t getCollInfo(void* context, const CollCall& call, int* nChannels) const;
  ncclResult_t finalize(void* context) const;
  // v6 and v7 tuners may change *chunkSize; older ones leave it alone.
  ncclResult_t getChunkSize(void* context, int collType, size_t nBytes, int algorithm, int protocol,
                            int nChannels, size_t* chunkSize) const;

 private:
  ChainedTuner() = default;
  ncclResult_t initV7(const InitCall& call, void** context) const;

  DlHandle library_;
  int version_ = 0;
  std::string description_;
  const tuner_abi::TunerV2* v2_ = nullptr;
  const tuner_abi::TunerV3* v3_ = nullptr;
  const tuner_abi::TunerV4* v4_ = nullptr;
  const tuner_abi::TunerV5* v5_ = nullptr;
  const tuner_abi::TunerV6* v6_ = nullptr;
  const tuner_abi::TunerV7* v7_ = nullptr;
};

// The chained tuner of this process for `name`, opened once and shared by every communicator
// (NCCL, too, loads one tuner per process). nullptr and *error when it cannot be used.
std::shared_ptr<const ChainedTuner> sharedChainedTuner(const std::string& name, std::string* error);

}  // namespace nccl_moe
