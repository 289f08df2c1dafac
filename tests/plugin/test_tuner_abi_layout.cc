// The tuner ABI structs of plugin/tuner_abi/ against NCCL's documented layout, version by version:
// field offsets, sizes, the exact function-pointer types and the symbol names. NCCL reads these
// structs by offset from a dlsym()ed address, so any drift here is a crash inside NCCL, not a
// compile error: these checks are what catches it.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <type_traits>

#include "plugin/tuner_abi.h"

namespace nccl_moe::tuner_abi {
namespace {

constexpr size_t kPtr = sizeof(void*);

// v2..v4: name, init, getCollInfo, destroy; v5: finalize in destroy's place; v6: + getChunkSize.
static_assert(offsetof(TunerV2, name) == 0 && offsetof(TunerV2, init) == kPtr &&
              offsetof(TunerV2, getCollInfo) == 2 * kPtr && offsetof(TunerV2, destroy) == 3 * kPtr &&
              sizeof(TunerV2) == 4 * kPtr);
static_assert(offsetof(TunerV3, getCollInfo) == 2 * kPtr && offsetof(TunerV3, destroy) == 3 * kPtr &&
              sizeof(TunerV3) == 4 * kPtr);
static_assert(offsetof(TunerV4, getCollInfo) == 2 * kPtr && offsetof(TunerV4, destroy) == 3 * kPtr &&
              sizeof(TunerV4) == 4 * kPtr);
static_assert(offsetof(TunerV5, init) == kPtr && offsetof(TunerV5, finalize) == 3 * kPtr &&
              sizeof(TunerV5) == 4 * kPtr);
static_assert(offsetof(TunerV6, init) == kPtr && offsetof(TunerV6, finalize) == 3 * kPtr &&
              offsetof(TunerV6, getChunkSize) == 4 * kPtr && sizeof(TunerV6) == 5 * kPtr);
static_assert(offsetof(TunerV7, init) == kPtr && offsetof(TunerV7, getCollInfo) == 2 * kPtr &&
              offsetof(TunerV7, finalize) == 3 * kPtr && offsetof(TunerV7, getChunkSize) == 4 * kPtr &&
              sizeof(TunerV7) == 5 * kPtr);

// The argument lists, spelled out once more from NCCL's headers (ncclFunc_t and
// ncclDebugLogger_t's level are enums of int's size, passed as int).
using InitOld = ncclResult_t (*)(size_t, size_t, Logger, void**);
using InitNew = ncclResult_t (*)(void**, uint64_t, size_t, size_t, Logger, NvlDomainInfoV5*, TunerConstantsV5*);
using CollInfoV2 = ncclResult_t (*)(void*, int, size_t, int, int, int, int*, int*, int*);
using CollInfoV3 = ncclResult_t (*)(void*, int, size_t, int, float**, int, int, int*);
using CollInfoV4 = ncclResult_t (*)(void*, int, size_t, int, float**, int, int, int, int*);
using Release = ncclResult_t (*)(void*);
using ChunkSize = ncclResult_t (*)(void*, int, size_t, int, int, int, size_t*);
static_assert(std::is_same_v<decltype(TunerV2::init), InitOld> && std::is_same_v<decltype(TunerV2::getCollInfo), CollInfoV2> &&
              std::is_same_v<decltype(TunerV2::destroy), Release>);
static_assert(std::is_same_v<decltype(TunerV3::init), InitOld> && std::is_same_v<decltype(TunerV3::getCollInfo), CollInfoV3> &&
              std::is_same_v<decltype(TunerV3::destroy), Release>);
static_assert(std::is_same_v<decltype(TunerV4::init), InitOld> && std::is_same_v<decltype(TunerV4::getCollInfo), CollInfoV4> &&
              std::is_same_v<decltype(TunerV4::destroy), Release>);
static_assert(std::is_same_v<decltype(TunerV5::init), InitNew> && std::is_same_v<decltype(TunerV5::getCollInfo), CollInfoV4> &&
              std::is_same_v<decltype(TunerV5::finalize), Release>);
static_assert(std::is_same_v<decltype(TunerV6::init), InitNew> && std::is_same_v<decltype(TunerV6::getCollInfo), CollInfoV4> &&
              std::is_same_v<decltype(TunerV6::finalize), Release> &&
              std::is_same_v<decltype(TunerV6::getChunkSize), ChunkSize>);
using InitV7 = ncclResult_t (*)(void**, uint64_t, size_t, size_t, Logger, NvlDomainInfoV5*, TunerConstantsV7*);
static_assert(std::is_same_v<decltype(TunerV7::init), InitV7> && std::is_same_v<decltype(TunerV7::getCollInfo), CollInfoV4> &&
              std::is_same_v<decltype(TunerV7::finalize), Release> &&
              std::is_same_v<decltype(TunerV7::getChunkSize), ChunkSize>);

// v5's (and v6's) in/out structs: three ints; 144 doubles in seven arrays.
static_assert(std::is_same_v<NvlDomainInfoV6, NvlDomainInfoV5> && std::is_same_v<TunerConstantsV6, TunerConstantsV5>);
static_assert(sizeof(NvlDomainInfoV5) == 3 * sizeof(int) && offsetof(NvlDomainInfoV5, minRanksPerNvlDomain) == 4 &&
              offsetof(NvlDomainInfoV5, maxRanksPerNvlDomain) == 8);
constexpr size_t kD = sizeof(double);
static_assert(offsetof(TunerConstantsV5, baseLatencies) == 0);
static_assert(offsetof(TunerConstantsV5, hwLatencies) == 7 * 3 * kD);
static_assert(offsetof(TunerConstantsV5, llMaxBws) == (21 + 3 * 7 * 3) * kD);
static_assert(offsetof(TunerConstantsV5, perChMaxRingLL128Bws) == (84 + 12) * kD);
static_assert(offsetof(TunerConstantsV5, perChMaxTreeLL128Bws) == (84 + 24) * kD);
static_assert(offsetof(TunerConstantsV5, perChMaxTreeBws) == (84 + 36) * kD);
static_assert(offsetof(TunerConstantsV5, perChMaxNVLSTreeBws) == (84 + 48) * kD);
static_assert(sizeof(TunerConstantsV5) == 144 * kD);
// v7: the same latencies, then five bandwidth tables of 5 compute capabilities x 3 scales.
static_assert(std::is_same_v<NvlDomainInfoV7, NvlDomainInfoV5>);
static_assert(offsetof(TunerConstantsV7, llMaxBws) == 84 * kD);
static_assert(offsetof(TunerConstantsV7, perChMaxRingLL128Bws) == (84 + 15) * kD);
static_assert(offsetof(TunerConstantsV7, perChMaxTreeLL128Bws) == (84 + 30) * kD);
static_assert(offsetof(TunerConstantsV7, perChMaxTreeBws) == (84 + 45) * kD);
static_assert(offsetof(TunerConstantsV7, perChMaxNVLSTreeBws) == (84 + 60) * kD);
static_assert(sizeof(TunerConstantsV7) == 159 * kD);

static_assert(kAllReduce == 4 && kReduceScatter == 3 && kAllGather == 2 && kLogWarn == 2 && kLogInfo == 3);
static_assert(kNumAlgorithms == 7 && kNumProtocols == 3);

TEST(TunerAbiLayout, SymbolNamesAreNcclsNewestFirst) {
  const char* names[] = {kSymbolV7, kSymbolV6, kSymbolV5, kSymbolV4, kSymbolV3, kSymbolV2};
  for (int i = 0; i < 6; ++i) {
    const std::string expected = "ncclTunerPlugin_v" + std::to_string(7 - i);
    EXPECT_STREQ(names[i], expected.c_str());
  }
}

TEST(TunerAbiLayout, ConstantsIndexLikeNccl) {
  // NCCL fills hwLatencies[link][algo][proto] and the bandwidth tables [compcap][scale] by index:
  // an element's address is the documented row-major one.
  TunerConstantsV5 c{};
  const auto* base = reinterpret_cast<const char*>(&c);
  EXPECT_EQ(reinterpret_cast<const char*>(&c.hwLatencies[2][6][1]) - base,
            static_cast<std::ptrdiff_t>((21 + 2 * 21 + 6 * 3 + 1) * kD));
  EXPECT_EQ(reinterpret_cast<const char*>(&c.perChMaxNVLSTreeBws[3][2]) - base,
            static_cast<std::ptrdiff_t>((143) * kD));
}

// v7 <-> v5 tables: the latencies and the first four compute-capability rows travel, the fifth
// row of a v7 table is left as it was.
TEST(TunerAbiLayout, ConstantsCopyBetweenV7AndV5) {
  TunerConstantsV7 v7{};
  double* values = &v7.baseLatencies[0][0];
  for (size_t i = 0; i < sizeof(v7) / kD; ++i) values[i] = 1000.0 + static_cast<double>(i);
  TunerConstantsV5 v5{};
  copyConstants(v7, &v5);
  EXPECT_EQ(v5.baseLatencies[6][2], v7.baseLatencies[6][2]);
  EXPECT_EQ(v5.hwLatencies[2][6][2], v7.hwLatencies[2][6][2]);
  for (int cap = 0; cap < kNumComputeCapsV5; ++cap)
    for (int scale = 0; scale < kNumTuningScalesV5; ++scale) {
      EXPECT_EQ(v5.llMaxBws[cap][scale], v7.llMaxBws[cap][scale]);
      EXPECT_EQ(v5.perChMaxNVLSTreeBws[cap][scale], v7.perChMaxNVLSTreeBws[cap][scale]);
    }
  // Back: a tuner changed a shared value; the fifth row keeps NCCL's values.
  v5.perChMaxTreeBws[3][1] = -5.0;
  const double fifth = v7.perChMaxTreeBws[4][1];
  copyConstants(v5, &v7);
  EXPECT_EQ(v7.perChMaxTreeBws[3][1], -5.0);
  EXPECT_EQ(v7.perChMaxTreeBws[4][1], fifth);
  EXPECT_EQ(v7.perChMaxNVLSTreeBws[4][2], 1000.0 + 158);
}

}  // namespace
}  // namespace nccl_moe::tuner_abi
