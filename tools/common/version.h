// What every tool prints for --version after its name: the nccl-moe version it was built as and the
// NCCL version beside it, "0.1.0 (NCCL 2.28.9)". The codes come from the caller (the library's
// NCCL_MOE_VERSION_CODE, ncclGetVersion's), so this file needs neither header nor library.
#pragma once

#include <string>

namespace nccl_moe::tools {

// NCCL's version code as "X.Y.Z": X * 10000 + Y * 100 + Z since NCCL 2.9, X * 1000 + Y * 100 + Z
// before it. "unknown" for a code <= 0 (ncclGetVersion failed).
std::string ncclVersionText(int code);

// "<library X.Y.Z> (NCCL <nccl X.Y.Z>)", or "... (NCCL <nccl>, <ncclNote>)" when a note says where
// the NCCL version came from.
std::string toolVersion(int libraryCode, int ncclCode, const std::string& ncclNote = "");

}  // namespace nccl_moe::tools
