// A stand-in libnccl.so.2 of an NCCL older than nccl-moe supports: only the functions NCCL has had
// since 2.7 (none of ncclGetLastError, ncclCommFinalize, ncclCommSplit), every one failing, and
// ncclGetVersion answering OLD_NCCL_STUB_VERSION (default 21706, i.e. 2.17.6). test_old_nccl.cc
// loads it in place of NCCL.
#include <nccl.h>

#include <cstdlib>

#define STUB_EXPORT extern "C" __attribute__((visibility("default")))

STUB_EXPORT ncclResult_t ncclGetVersion(int* version) {
  const char* text = std::getenv("OLD_NCCL_STUB_VERSION");
  *version = text != nullptr ? std::atoi(text) : 21706;
  return ncclSuccess;
}
STUB_EXPORT const char* ncclGetErrorString(ncclResult_t) { return "old NCCL stub"; }
STUB_EXPORT ncclResult_t ncclGetUniqueId(ncclUniqueId*) { return ncclInternalError; }
STUB_EXPORT ncclResult_t ncclCommInitRank(ncclComm_t*, int, ncclUniqueId, int) { return ncclInternalError; }
STUB_EXPORT ncclResult_t ncclCommDestroy(ncclComm_t) { return ncclInternalError; }
STUB_EXPORT ncclResult_t ncclCommAbort(ncclComm_t) { return ncclInternalError; }
STUB_EXPORT ncclResult_t ncclCommGetAsyncError(ncclComm_t, ncclResult_t*) { return ncclInternalError; }
STUB_EXPORT ncclResult_t ncclCommCount(const ncclComm_t, int*) { return ncclInternalError; }
STUB_EXPORT ncclResult_t ncclCommCuDevice(const ncclComm_t, int*) { return ncclInternalError; }
STUB_EXPORT ncclResult_t ncclCommUserRank(const ncclComm_t, int*) { return ncclInternalError; }
STUB_EXPORT ncclResult_t ncclAllGather(const void*, void*, size_t, ncclDataType_t, ncclComm_t, cudaStream_t) {
  return ncclInternalError;
}
STUB_EXPORT ncclResult_t ncclAllReduce(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t,
                                       cudaStream_t) {
  return ncclInternalError;
}
STUB_EXPORT ncclResult_t ncclSend(const void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) {
  return ncclInternalError;
}
STUB_EXPORT ncclResult_t ncclRecv(void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) {
  return ncclInternalError;
}
STUB_EXPORT ncclResult_t ncclGroupStart() { return ncclInternalError; }
STUB_EXPORT ncclResult_t ncclGroupEnd() { return ncclInternalError; }
