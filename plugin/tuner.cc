#include "tuner.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <string>

#include "chained_tuner.h"
#include "channel_cap.h"
#include "misc/comm_registry.h"
#include "comm_summary.h"
#include "cost_table.h"
#include "device_sms.h"
#include "nccl_log.h"
#include "tuner_settings.h"

namespace nccl_moe {

namespace {

using tuner_abi::kSubsysEnv;
using tuner_abi::kSubsysInit;
using tuner_abi::kSubsysTuning;

struct TunerContext {
  uint64_t registryKey = 0;
  int channelCap = 0;
  NcclLog log;
  std::shared_ptr<const ChainedTuner> chain;
  void* chainContext = nullptr;
  std::atomic<bool> chainFailureLogged{false};
};

CommRecord recordOf(const InitCall& call, int channelCap) {
  CommRecord record;
  record.hasNcclId = call.hasCommId;
  record.ncclCommId = call.commId;
  record.ranks = call.ranks;
  record.nodes = call.nodes;
  if (call.nvlDomains != nullptr) {
    record.nvlDomains = call.nvlDomains->nNvlDomains;
    record.minRanksPerDomain = call.nvlDomains->minRanksPerNvlDomain;
    record.maxRanksPerDomain = call.nvlDomains->maxRanksPerNvlDomain;
  }
  record.channelCap = channelCap;
  return record;
}

// Opens and initialises the chained tuner for this communicator; on any failure the communicator
// runs without it.
void attachChain(const std::string& name, const InitCall& call, TunerContext* context) {
  std::string error;
  std::shared_ptr<const ChainedTuner> chain = sharedChainedTuner(name, &error);
  if (chain == nullptr) {
    context->log.warn("nccl-moe: NCCL_MOE_CHAIN_TUNER=%s not used: %s", name.c_str(), error.c_str());
    return;
  }
  InitCall forwarded = call;
  if (!forwarded.hasCommId) forwarded.commId = context->registryKey;
  void* chainContext = nullptr;
  const ncclResult_t result = chain->init(forwarded, &chainContext);
  if (result != ncclSuccess) {
    context->log.warn("nccl-moe: chained tuner %s failed to initialise (error %d); not chaining",
                      chain->description().c_str(), static_cast<int>(result));
    return;
  }
  context->chain = std::move(chain);
  context->chainContext = chainContext;
}

// Asks the chained tuner; if it fails, its partial changes to the cost table are undone.
int chainedChannels(TunerContext* context, const CollCall& call) {
  constexpr int kMaxSaved = 256;
  const int entries = call.costTable != nullptr ? call.numAlgo * call.numProto : 0;
  float saved[kMaxSaved];
  const bool restorable = entries >= 0 && entries <= kMaxSaved;
  if (restorable) std::copy(call.costs(), call.costs() + entries, saved);
  int channels = 0;
  const ncclResult_t result = context->chain->getCollInfo(context->chainContext, call, &channels);
  if (result == ncclSuccess) return std::max(channels, 0);
  if (restorable) std::copy(saved, saved + entries, call.costs());
  if (!context->chainFailureLogged.exchange(true)) {
    context->log.warn("nccl-moe: chained tuner %s failed (error %d); its answers are ignored",
                      context->chain->description().c_str(), static_cast<int>(result));
  }
  return 0;
}

}  // namespace

ncclResult_t tunerInit(const InitCall& call, void** context) noexcept {
  if (context == nullptr) return ncclSuccess;
  *context = nullptr;
  NcclLog log(call.logger);
  try {
    const TunerSettings settings = readTunerSettings();
    for (const std::string& rejected : settings.rejected) {
      log.warn("nccl-moe: %s is not valid; using the default", rejected.c_str());
    }
    const bool derive = settings.ncclMaxChannels == 0 && settings.overlapNccl;
    const ChannelCap cap = decideChannelCap(settings, derive ? currentDeviceSms() : 0);

    auto created = std::make_unique<TunerContext>();
    created->log = log;
    created->channelCap = cap.channels;
    const CommRecord record = recordOf(call, cap.channels);
    created->registryKey = commRegistry().add(record);
    if (!settings.chainTuner.empty()) attachChain(settings.chainTuner, call, created.get());

    CommRecord described = record;
    described.key = created->registryKey;
    const std::string chain = created->chain ? created->chain->description() : "";
    log.info(kSubsysInit | kSubsysTuning, "%s",
             describeComm(described, cap, chain, call.abiVersion).c_str());
    *context = created.release();
  } catch (const std::exception& error) {
    log.warn("nccl-moe tuner: init failed (%s); NCCL tunes this communicator on its own", error.what());
  } catch (...) {
    log.warn("nccl-moe tuner: init failed; NCCL tunes this communicator on its own");
  }
  return ncclSuccess;
}

ncclResult_t tunerGetCollInfo(void* context, const CollCall& call, int* nChannels) noexcept {
  auto* tuner = static_cast<TunerContext*>(context);
  if (tuner == nullptr || nChannels == nullptr) return ncclSuccess;
  const int chained = tuner->chain ? chainedChannels(tuner, call) : 0;
  const bool capSafe = channelAnswerIsSafe(call.costs(), call.numAlgo, call.numProto);
  const int channels = channelsForCollective(capSafe ? tuner->channelCap : 0, call.nBytes, chained);
  if (channels > 0) *nChannels = channels;
  return ncclSuccess;
}

ncclResult_t tunerGetChunkSize(void* context, int collType, size_t nBytes, int algorithm,
                               int protocol, int nChannels, size_t* chunkSize) noexcept {
  auto* tuner = static_cast<TunerContext*>(context);
  if (tuner == nullptr || !tuner->chain || chunkSize == nullptr) return ncclSuccess;
  const size_t original = *chunkSize;
  const ncclResult_t result = tuner->chain->getChunkSize(tuner->chainContext, collType, nBytes,
                                                         algorithm, protocol, nChannels, chunkSize);
  if (result != ncclSuccess) *chunkSize = original;
  return ncclSuccess;
}

ncclResult_t tunerFinalize(void* context) noexcept {
  auto* tuner = static_cast<TunerContext*>(context);
  if (tuner == nullptr) return ncclSuccess;
  if (tuner->chain) {
    const ncclResult_t result = tuner->chain->finalize(tuner->chainContext);
    if (result != ncclSuccess) {
      tuner->log.warn("nccl-moe: chained tuner %s failed to finalize (error %d)",
                      tuner->chain->description().c_str(), static_cast<int>(result));
    }
  }
  commRegistry().remove(tuner->registryKey);
  delete tuner;
  return ncclSuccess;
}

}  // namespace nccl_moe
