#include "plugin/tuner_abi/tuner_v7.h"

#include <cstring>

namespace nccl_moe::tuner_abi {

namespace {

// Copies what both layouts hold; `To` and `From` differ only in the number of compute-capability
// rows of the five bandwidth tables, of which the first kNumComputeCapsV5 are shared.
template <class To, class From>
void copyShared(const From& from, To* to) {
  std::memcpy(to->baseLatencies, from.baseLatencies, sizeof(from.baseLatencies));
  std::memcpy(to->hwLatencies, from.hwLatencies, sizeof(from.hwLatencies));
  constexpr size_t rows = sizeof(double) * kNumComputeCapsV5 * kNumTuningScalesV5;
  std::memcpy(to->llMaxBws, from.llMaxBws, rows);
  std::memcpy(to->perChMaxRingLL128Bws, from.perChMaxRingLL128Bws, rows);
  std::memcpy(to->perChMaxTreeLL128Bws, from.perChMaxTreeLL128Bws, rows);
  std::memcpy(to->perChMaxTreeBws, from.perChMaxTreeBws, rows);
  std::memcpy(to->perChMaxNVLSTreeBws, from.perChMaxNVLSTreeBws, rows);
}

}  // namespace

void copyConstants(const TunerConstantsV7& from, TunerConstantsV5* to) { copyShared(from, to); }
void copyConstants(const TunerConstantsV5& from, TunerConstantsV7* to) { copyShared(from, to); }

}  // namespace nccl_moe::tuner_abi
