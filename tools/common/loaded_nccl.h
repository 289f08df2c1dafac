// The --version text of a tool that links NCCL: the library version it was built as and the NCCL
// version this process loaded. Header-only, for the tools that link libnccl (tools/common itself
// does not).
#pragma once

#include <nccl.h>

#include <string>

#include "nccl_moe.h"
#include "tools/common/version.h"

namespace nccl_moe::tools {

// ncclGetVersion's code, 0 when it fails.
inline int loadedNcclVersion() {
  int code = 0;
  return ncclGetVersion(&code) == ncclSuccess ? code : 0;
}

// "0.1.0 (NCCL 2.28.9)".
inline std::string versionWithLoadedNccl() { return toolVersion(NCCL_MOE_VERSION_CODE, loadedNcclVersion()); }

}  // namespace nccl_moe::tools
