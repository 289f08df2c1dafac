#include "misc/nccl_version.h"

#include <nccl.h>

#include "misc/nccl_status.h"

namespace nccl_moe {

NcclVersion decodeNcclVersion(int code) {
  NcclVersion v;
  if (code >= 10000) {  // NCCL_VERSION(X, Y, Z) from 2.9 on
    v.major = code / 10000;
    v.minor = code / 100 % 100;
  } else {              // 2.8 and older
    v.major = code / 1000;
    v.minor = code / 100 % 10;
  }
  v.patch = code % 100;
  return v;
}

Status checkNcclVersion(int loadedCode, int headerCode) {
  const NcclVersion loaded = decodeNcclVersion(loadedCode);
  if (loaded.major > kMinNcclMajor || (loaded.major == kMinNcclMajor && loaded.minor >= kMinNcclMinor))
    return Status::ok();
  const NcclVersion header = decodeNcclVersion(headerCode);
  return Status::invalidUsage(
      format("the NCCL library loaded in this process is %d.%d.%d; nccl-moe needs NCCL %d.%d or newer "
             "(it was built against nccl.h %d.%d.%d). Load a newer libnccl.so.2 (LD_LIBRARY_PATH, or the "
             "NCCL your framework ships)",
             loaded.major, loaded.minor, loaded.patch, kMinNcclMajor, kMinNcclMinor, header.major, header.minor,
             header.patch));
}

Status checkLoadedNccl() {
  static const Status verdict = [] {
    int loaded = 0;
    if (Status s = ncclStatus(ncclGetVersion(&loaded), "ncclGetVersion"); !s.isOk()) return s;
    return checkNcclVersion(loaded, NCCL_VERSION_CODE);
  }();
  return verdict;
}

}  // namespace nccl_moe
