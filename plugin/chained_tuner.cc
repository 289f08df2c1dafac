#include "chained_tuner.h"

#include <dlfcn.h>

#include <map>
#include <mutex>
#include <vector>

#include "cost_table.h"

namespace nccl_moe {

namespace {

using namespace tuner_abi;

struct VersionedSymbol {
  const char* name;
  int version;
};
constexpr VersionedSymbol kSymbolsNewestFirst[] = {
    {kSymbolV7, 7}, {kSymbolV6, 6}, {kSymbolV5, 5}, {kSymbolV4, 4}, {kSymbolV3, 3}, {kSymbolV2, 2}};

// The domain info of a caller that passes none (v2-v4): one NVLink domain per node.
NvlDomainInfo oneDomainPerNode(const InitCall& call) {
  NvlDomainInfo domains{static_cast<int>(call.nodes), 0, 0};
  if (call.nodes > 0) domains.minRanksPerNvlDomain = domains.maxRanksPerNvlDomain = static_cast<int>(call.ranks / call.nodes);
  return domains;
}

// Any function of this library: dladdr() of it tells which object nccl-moe itself was loaded from.
void selfMarker() {}

bool sameObject(const void* a, const void* b) {
  Dl_info infoA{}, infoB{};
  if (dladdr(a, &infoA) == 0 || dladdr(b, &infoB) == 0) return false;
  return infoA.dli_fbase == infoB.dli_fbase;
}

DlHandle openByName(const std::string& name, std::string* error) {
  DlHandle library = DlHandle::open(name, error);
  const bool bareName = name.find('/') == std::string::npos && name.rfind("lib", 0) != 0;
  if (!library && bareName) library = DlHandle::open("libnccl-tuner-" + name + ".so", error);
  return library;
}

// A v2 tuner behind a v3+ caller: support flags come from the table, and its algorithm/protocol
// choice becomes the cheapest entry (cost 0) of the table.
ncclResult_t v2FromTable(const TunerV2& tuner, void* context, const CollCall& call, int* nChannels) {
  float* costs = call.costs();
  const int collNet = anyUsable(costs, call.numAlgo, call.numProto, kAlgoCollNetDirect, kAlgoCollNetChain);
  const int nvls = anyUsable(costs, call.numAlgo, call.numProto, kAlgoNvls, kAlgoNvlsTree);
  int algorithm = -1, protocol = -1;
  const ncclResult_t result = tuner.getCollInfo(context, call.collType, call.nBytes, collNet, nvls,
                                                call.numPipeOps, &algorithm, &protocol, nChannels);
  if (result != ncclSuccess) return result;
  if (algorithm >= 0 && algorithm < call.numAlgo && protocol >= 0 && protocol < call.numProto) {
    float& chosen = costs[algorithm * call.numProto + protocol];
    if (chosen >= 0.0f) chosen = 0.0f;
  }
  return ncclSuccess;
}

// A v3+ tuner behind a v2 caller: it sees a table of usable entries (cost 1) and its cheapest
// entry becomes the algorithm/protocol answer.
template <class Forward>
ncclResult_t tableFromV2(const CollCall& call, Forward forward) {
  std::vector<float> costs(kNumAlgorithms * kNumProtocols, 1.0f);
  auto markIgnored = [&](int algo) {
    for (int p = 0; p < kNumProtocols; ++p) costs[algo * kNumProtocols + p] = kIgnoredCost;
  };
  if (!call.collNetSupport) {
    markIgnored(kAlgoCollNetDirect);
    markIgnored(kAlgoCollNetChain);
  }
  if (!call.nvlsSupport) {
    markIgnored(kAlgoNvls);
    markIgnored(kAlgoNvlsTree);
  }
  const ncclResult_t result = forward(reinterpret_cast<float**>(costs.data()));
  if (result != ncclSuccess) return result;
  int algorithm = -1, protocol = -1;
  const bool changed = cheapestEntry(costs.data(), kNumAlgorithms, kNumProtocols, &algorithm, &protocol) &&
                       costs[algorithm * kNumProtocols + protocol] < 1.0f;
  if (changed && call.algorithm != nullptr && call.protocol != nullptr) {
    *call.algorithm = algorithm;
    *call.protocol = protocol;
  }
  return ncclSuccess;
}

}  // namespace

std::unique_ptr<ChainedTuner> ChainedTuner::open(const std::string& name, std::string* error) {
  std::unique_ptr<ChainedTuner> tuner(new ChainedTuner);
  tuner->library_ = openByName(name, error);
  if (!tuner->library_) return nullptr;
  void* symbol = nullptr;
  for (const auto& [symbolName, version] : kSymbolsNewestFirst) {
    symbol = tuner->library_.symbol(symbolName);
    if (symbol != nullptr) {
      tuner->version_ = version;
      break;
    }
  }
  switch (tuner->version_) {
    case 7: tuner->v7_ = static_cast<const TunerV7*>(symbol); break;
    case 6: tuner->v6_ = static_cast<const TunerV6*>(symbol); break;
    case 5: tuner->v5_ = static_cast<const TunerV5*>(symbol); break;
    case 4: tuner->v4_ = static_cast<const TunerV4*>(symbol); break;
    case 3: tuner->v3_ = static_cast<const TunerV3*>(symbol); break;
    case 2: tuner->v2_ = static_cast<const TunerV2*>(symbol); break;
    default: *error = name + " exports no ncclTunerPlugin_v2..v7 symbol"; return nullptr;
  }
  if (sameObject(symbol, reinterpret_cast<const void*>(&selfMarker))) {
    *error = name + " is nccl-moe itself; not chaining to it";
    return nullptr;
  }
  // Every version's struct starts with the name.
  const char* tunerName = *static_cast<const char* const*>(symbol);
  tuner->description_ = std::string(tunerName != nullptr ? tunerName : "?") + " (v" +
                        std::to_string(tuner->version_) + ", " + name + ")";
  return tuner;
}

ncclResult_t ChainedTuner::init(const InitCall& call, void** context) const {
  if (v7_ != nullptr) return initV7(call, context);
  if (v5_ != nullptr || v6_ != nullptr) {
    // Older callers have no domain info or constants: give one domain per node and a scratch
    // constants table whose changes are dropped.
    NvlDomainInfo domains = oneDomainPerNode(call);
    TunerConstants scratch{};
    NvlDomainInfo* nvl = call.nvlDomains != nullptr ? call.nvlDomains : &domains;
    TunerConstants* constants = call.constants != nullptr ? call.constants : &scratch;
    const auto initFn = v6_ != nullptr ? v6_->init : v5_->init;
    return initFn(context, call.commId, call.ranks, call.nodes, call.logger, nvl, constants);
  }
  if (v4_ != nullptr) return v4_->init(call.ranks, call.nodes, call.logger, context);
  if (v3_ != nullptr) return v3_->init(call.ranks, call.nodes, call.logger, context);
  return v2_->init(call.ranks, call.nodes, call.logger, context);
}

// A v7 tuner gets NCCL's own v7 table when NCCL called in v7, else one made from the v5 table it
// passed (no values for the fifth compute-capability class), whose shared rows are copied back.
ncclResult_t ChainedTuner::initV7(const InitCall& call, void** context) const {
  NvlDomainInfo domains = oneDomainPerNode(call);
  NvlDomainInfo* nvl = call.nvlDomains != nullptr ? call.nvlDomains : &domains;
  if (call.constantsV7 != nullptr) {
    const ncclResult_t result = v7_->init(context, call.commId, call.ranks, call.nodes, call.logger, nvl, call.constantsV7);
    // The caller copies its v5 view back into NCCL's table: give it what the v7 tuner left there.
    if (call.constants != nullptr) copyConstants(*call.constantsV7, call.constants);
    return result;
  }
  TunerConstantsV7 table{};
  if (call.constants != nullptr) copyConstants(*call.constants, &table);
  const ncclResult_t result = v7_->init(context, call.commId, call.ranks, call.nodes, call.logger, nvl, &table);
  if (call.constants != nullptr) copyConstants(table, call.constants);
  return result;
}

ncclResult_t ChainedTuner::getCollInfo(void* context, const CollCall& call, int* nChannels) const {
  if (v2_ != nullptr) {
    if (call.costTable != nullptr) return v2FromTable(*v2_, context, call, nChannels);
    return v2_->getCollInfo(context, call.collType, call.nBytes, call.collNetSupport, call.nvlsSupport,
                            call.numPipeOps, call.algorithm, call.protocol, nChannels);
  }
  auto forward = [&](float** table) {
    const int numAlgo = call.costTable != nullptr ? call.numAlgo : kNumAlgorithms;
    const int numProto = call.costTable != nullptr ? call.numProto : kNumProtocols;
    if (v7_ != nullptr) {
      return v7_->getCollInfo(context, call.collType, call.nBytes, call.numPipeOps, table, numAlgo,
                              numProto, call.regBuff, nChannels);
    }
    if (v6_ != nullptr) {
      return v6_->getCollInfo(context, call.collType, call.nBytes, call.numPipeOps, table, numAlgo,
                              numProto, call.regBuff, nChannels);
    }
    if (v5_ != nullptr) {
      return v5_->getCollInfo(context, call.collType, call.nBytes, call.numPipeOps, table, numAlgo,
                              numProto, call.regBuff, nChannels);
    }
    if (v4_ != nullptr) {
      return v4_->getCollInfo(context, call.collType, call.nBytes, call.numPipeOps, table, numAlgo,
                              numProto, call.regBuff, nChannels);
    }
    return v3_->getCollInfo(context, call.collType, call.nBytes, call.numPipeOps, table, numAlgo,
                            numProto, nChannels);
  };
  if (call.costTable == nullptr) return tableFromV2(call, forward);
  return forward(call.costTable);
}

ncclResult_t ChainedTuner::finalize(void* context) const {
  if (v7_ != nullptr) return v7_->finalize(context);
  if (v6_ != nullptr) return v6_->finalize(context);
  if (v5_ != nullptr) return v5_->finalize(context);
  if (v4_ != nullptr) return v4_->destroy(context);
  if (v3_ != nullptr) return v3_->destroy(context);
  return v2_->destroy(context);
}

ncclResult_t ChainedTuner::getChunkSize(void* context, int collType, size_t nBytes, int algorithm,
                                        int protocol, int nChannels, size_t* chunkSize) const {
  if (v7_ != nullptr && v7_->getChunkSize != nullptr)
    return v7_->getChunkSize(context, collType, nBytes, algorithm, protocol, nChannels, chunkSize);
  if (v6_ == nullptr || v6_->getChunkSize == nullptr) return ncclSuccess;
  return v6_->getChunkSize(context, collType, nBytes, algorithm, protocol, nChannels, chunkSize);
}

std::shared_ptr<const ChainedTuner> sharedChainedTuner(const std::string& name, std::string* error) {
  static std::mutex mutex;
  // Leaked like the registry: communicators may be finalized after static destructors ran.
  static auto* opened = new std::map<std::string, std::shared_ptr<const ChainedTuner>>;
  std::lock_guard<std::mutex> lock(mutex);
  auto found = opened->find(name);
  if (found != opened->end()) return found->second;
  std::shared_ptr<const ChainedTuner> tuner = ChainedTuner::open(name, error);
  if (tuner != nullptr) (*opened)[name] = tuner;
  return tuner;
}

}  // namespace nccl_moe
