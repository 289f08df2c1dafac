// The oldest NCCL nccl-moe works with, and the check of the NCCL a process actually loaded.
//
// 2.18 is the first release with ncclCommSplit (the rail communicators of the two-hop path) and
// the first whose ncclConfig_t bounds a split's CTAs (minCTAs/maxCTAs arrived in 2.17). The
// functions newer than NCCL 2.7 are referenced weakly (nccl_symbols.h), so that the library still
// loads beside an older libnccl.so.2 and ncclMoeCommCreate can say why it cannot go on.
// CMakeLists.txt reads kMinNcclMajor/kMinNcclMinor below and checks nccl.h against them.
#pragma once

#include "misc/status.h"

namespace nccl_moe {

constexpr int kMinNcclMajor = 2;
constexpr int kMinNcclMinor = 18;

struct NcclVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;
};

// Splits an NCCL version code: X * 10000 + Y * 100 + Z since 2.9, X * 1000 + Y * 100 + Z before.
NcclVersion decodeNcclVersion(int code);

// ok when `loadedCode` (ncclGetVersion's answer) is at least kMinNccl*, else ncclInvalidUsage
// naming both the loaded version and the one the library was built against (`headerCode`).
Status checkNcclVersion(int loadedCode, int headerCode);

// checkNcclVersion of the libnccl.so.2 this process loaded (asked once, then remembered).
Status checkLoadedNccl();

}  // namespace nccl_moe
