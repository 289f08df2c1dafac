#include "tools/common/version.h"

#include "tools/common/flags.h"

namespace nccl_moe::tools {

std::string ncclVersionText(int code) {
  if (code <= 0) return "unknown";
  // NCCL_VERSION(X, Y, Z) in nccl.h: the wider form from 2.9 on.
  if (code >= 10000) return versionText(code);
  return std::to_string(code / 1000) + "." + std::to_string(code / 100 % 10) + "." + std::to_string(code % 100);
}

std::string toolVersion(int libraryCode, int ncclCode, const std::string& ncclNote) {
  std::string nccl = "NCCL " + ncclVersionText(ncclCode);
  if (!ncclNote.empty()) nccl += ", " + ncclNote;
  return versionText(libraryCode) + " (" + nccl + ")";
}

}  // namespace nccl_moe::tools
