// The public C API: argument checks, error reporting, dispatch to the implementation.
#include "nccl_moe.h"

#include "core/call_checks.h"
#include "core/comm.h"
#include "core/low_latency.h"
#include "misc/last_error.h"
#include "misc/live_set.h"
#include "misc/nccl_version.h"

#include <cstddef>
#include <memory>

// Functions of the public API are the only symbols the library exports (with libnccl_moe.map).
#define NCCL_MOE_EXPORT extern "C" __attribute__((visibility("default")))

namespace nccl_moe {
namespace {

LiveSet<ncclMoeComm>& liveComms() {
  static LiveSet<ncclMoeComm> set;
  return set;
}

LiveSet<ncclMoeHandle>& liveHandles() {
  static LiveSet<ncclMoeHandle> set;
  return set;
}

Status checkComm(const ncclMoeComm* comm) {
  if (comm == nullptr) return Status::invalidArgument("comm is NULL");
  if (!liveComms().contains(comm))
    return Status::invalidArgument("comm is not a live ncclMoeComm_t (destroyed, or never created)");
  return Status::ok();
}

Status checkHandle(const ncclMoeHandle* handle, const ncclMoeComm* comm) {
  if (handle == nullptr) return Status::invalidArgument("handle is NULL");
  if (!liveHandles().contains(handle))
    return Status::invalidArgument("handle is not a live ncclMoeHandle_t (destroyed, or never created)");
  // The communicator's address may have been reused by a newer one: compare ids too.
  if (!liveComms().contains(handle->comm) || handle->comm->id != handle->commId)
    return Status::invalidUsage(
        "handle is stale: the communicator it was made on was destroyed or resized since (re-create the handle "
        "with ncclMoeLayoutCreate on the current communicator)");
  if (comm != nullptr && handle->comm != comm)
    return Status::invalidArgument("handle belongs to another communicator");
  return Status::ok();
}

// A handle whose last layout failed part-way describes nothing: only a new layout may use it.
Status checkLaidOut(const ncclMoeHandle* handle) {
  if (handle->laidOut) return Status::ok();
  return Status::invalidUsage(
      "handle's last ncclMoeLayoutCreate failed (ncclMoeGetLastError said why): redo the layout on "
      "this handle before using it");
}

// Every call on a communicator first reports a failure a kernel recorded (a timeout).
Status checkCommHealthy(ncclMoeComm* comm) { return asyncError(*comm); }

// The LL calls: a live, healthy communicator, then the call's own checks and its one kernel
// (core/low_latency.cc). Nothing is enqueued, and no output written, on any failure.
template <class Run>
ncclResult_t lowLatencyCall(const char* call, ncclMoeComm* comm, Run run) {
  if (Status s = checkComm(comm); !s.isOk()) return reportFailure(call, s);
  if (Status s = checkCommHealthy(comm); !s.isOk()) return reportFailure(call, s, &comm->lastError);
  if (Status s = run(); !s.isOk()) return reportFailure(call, s, &comm->lastError);
  return ncclSuccess;
}

}  // namespace
}  // namespace nccl_moe

using namespace nccl_moe;

NCCL_MOE_EXPORT ncclResult_t ncclMoeGetVersion(int* version) {
  if (version == nullptr)
    return reportFailure("ncclMoeGetVersion", Status::invalidArgument("version is NULL"));
  *version = NCCL_MOE_VERSION_CODE;
  return ncclSuccess;
}

NCCL_MOE_EXPORT const char* ncclMoeGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_MOE_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_MOE_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the nccl-moe developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_MOE_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_MOE_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}

NCCL_MOE_EXPORT const char* ncclMoeGetLastError(ncclMoeComm_t comm) {
  if (comm != nullptr && liveComms().contains(comm)) {
    if (const char* copy = lastErrorCopy(comm->lastError)) return copy;
  }
  return threadLastError();
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeCommCreate(ncclComm_t comm, const ncclMoeConfig_t* config,
                                               ncclMoeComm_t* moeComm) {
  constexpr const char* kCall = "ncclMoeCommCreate";
  if (moeComm == nullptr) return reportFailure(kCall, Status::invalidArgument("moeComm is NULL"));
  *moeComm = nullptr;
  if (comm == nullptr) return reportFailure(kCall, Status::invalidArgument("comm is NULL"));
  // Before any NCCL call: a too-old NCCL may lack the functions used below (nccl_symbols.h). This
  // rank alone fails at once; the others fail when their set-up exchange with it times out.
  if (Status s = checkLoadedNccl(); !s.isOk()) return reportFailure(kCall, s);
  std::unique_ptr<ncclMoeComm> created;
  if (Status s = createComm(comm, config, &created); !s.isOk()) return reportFailure(kCall, s);
  liveComms().add(created.get());
  *moeComm = created.release();
  return ncclSuccess;
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeCommDestroy(ncclMoeComm_t moeComm) {
  if (Status s = checkComm(moeComm); !s.isOk()) return reportFailure("ncclMoeCommDestroy", s);
  liveComms().remove(moeComm);
  const Status status = destroyComm(moeComm);
  delete moeComm;
  return status.isOk() ? ncclSuccess : reportFailure("ncclMoeCommDestroy", status);
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeCommResize(ncclMoeComm_t comm, int maxTokensPerRank) {
  constexpr const char* kCall = "ncclMoeCommResize";
  if (Status s = checkComm(comm); !s.isOk()) return reportFailure(kCall, s);
  if (Status s = resizeComm(comm, maxTokensPerRank); !s.isOk()) return reportFailure(kCall, s, &comm->lastError);
  return ncclSuccess;
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeCommGetAsyncError(ncclMoeComm_t comm, ncclResult_t* asyncResult) {
  constexpr const char* kCall = "ncclMoeCommGetAsyncError";
  if (Status s = checkComm(comm); !s.isOk()) return reportFailure(kCall, s);
  if (asyncResult == nullptr) return reportFailure(kCall, Status::invalidArgument("asyncResult is NULL"));
  const Status status = asyncError(*comm);
  *asyncResult = status.code();
  if (!status.isOk()) reportFailure(kCall, status, &comm->lastError);
  return ncclSuccess;
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeCommGetInfo(ncclMoeComm_t comm, ncclMoeCommInfo_t* info) {
  constexpr const char* kCall = "ncclMoeCommGetInfo";
  if (Status s = checkComm(comm); !s.isOk()) return reportFailure(kCall, s);
  if (info == nullptr) return reportFailure(kCall, Status::invalidArgument("info is NULL"));
  // The first release's struct ended before lowLatencyBufferBytes.
  if (Status s = checkGrowingStructHeader("ncclMoeCommInfo_t", info->size, info->magic, info->version,
                                          offsetof(ncclMoeCommInfo_t, lowLatencyBufferBytes), sizeof(ncclMoeCommInfo_t));
      !s.isOk())
    return reportFailure(kCall, s, &comm->lastError);
  commInfo(*comm, info);
  return ncclSuccess;
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeCommGetInputBuffers(ncclMoeComm_t comm, ncclMoeInputBuffers_t* buffers) {
  constexpr const char* kCall = "ncclMoeCommGetInputBuffers";
  if (Status s = checkComm(comm); !s.isOk()) return reportFailure(kCall, s);
  if (buffers == nullptr) return reportFailure(kCall, Status::invalidArgument("buffers is NULL"));
  if (Status s = checkStructHeader("ncclMoeInputBuffers_t", buffers->size, buffers->magic, buffers->version,
                                   sizeof(ncclMoeInputBuffers_t));
      !s.isOk())
    return reportFailure(kCall, s, &comm->lastError);
  const InputAreas areas = inputAreas(*comm);
  buffers->dispatchX = areas.dispatch.begin;
  buffers->dispatchXBytes = areas.dispatch.bytes;
  buffers->combineX = areas.combine.begin;
  buffers->combineXBytes = areas.combine.bytes;
  comm->inputsExposed = true;
  return ncclSuccess;
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeCommSetPhaseTiming(ncclMoeComm_t comm, int enable) {
  constexpr const char* kCall = "ncclMoeCommSetPhaseTiming";
  if (Status s = checkComm(comm); !s.isOk()) return reportFailure(kCall, s);
  if (Status s = comm->clock.enable(enable != 0); !s.isOk()) return reportFailure(kCall, s, &comm->lastError);
  return ncclSuccess;
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeCommGetPhaseTimes(ncclMoeComm_t comm, ncclMoePhaseTimes_t* times) {
  constexpr const char* kCall = "ncclMoeCommGetPhaseTimes";
  if (Status s = checkComm(comm); !s.isOk()) return reportFailure(kCall, s);
  if (times == nullptr) return reportFailure(kCall, Status::invalidArgument("times is NULL"));
  if (Status s = checkStructHeader("ncclMoePhaseTimes_t", times->size, times->magic, times->version,
                                   sizeof(ncclMoePhaseTimes_t));
      !s.isOk())
    return reportFailure(kCall, s, &comm->lastError);
  if (!comm->clock.everEnabled())
    return reportFailure(kCall, Status::invalidUsage("phase timing was never enabled (ncclMoeCommSetPhaseTiming)"),
                         &comm->lastError);
  if (Status s = comm->clock.read(times); !s.isOk()) return reportFailure(kCall, s, &comm->lastError);
  return ncclSuccess;
}

NCCL_MOE_EXPORT const char* ncclMoePhaseName(ncclMoePhase_t phase) {
  switch (phase) {
    case ncclMoePhaseLayoutPublish: return "layout.publish";
    case ncclMoePhaseLayoutNetwork: return "layout.network";
    case ncclMoePhaseLayoutScan: return "layout.scan";
    case ncclMoePhaseDispatchStage: return "dispatch.stage";
    case ncclMoePhaseDispatchNetwork: return "dispatch.network";
    case ncclMoePhaseDispatchNvlink: return "dispatch.nvlink";
    case ncclMoePhaseDispatchForward: return "dispatch.forward";
    case ncclMoePhaseCombineNvlink: return "combine.nvlink";
    case ncclMoePhaseCombineNetwork: return "combine.network";
    case ncclMoePhaseCombineReduce: return "combine.reduce";
    case ncclMoeNumPhases: break;
  }
  return nullptr;
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeLayoutCreate(ncclMoeComm_t comm, const ncclMoeRouting_t* routing,
                                                 const ncclMoeLayoutOptions_t* options, ncclMoeHandle_t* handle,
                                                 cudaStream_t stream) {
  constexpr const char* kCall = "ncclMoeLayoutCreate";
  if (handle == nullptr) return reportFailure(kCall, Status::invalidArgument("handle is NULL"));
  // A live handle of this communicator is reused in place; anything else is overwritten.
  // A live handle of this communicator is reused in place; a live handle of another (or of a
  // destroyed) communicator is refused rather than silently replaced; anything else is ignored.
  ncclMoeHandle* reuse = *handle != nullptr && liveHandles().contains(*handle) ? *handle : nullptr;
  if (reuse == nullptr) *handle = nullptr;
  if (Status s = checkComm(comm); !s.isOk()) return reportFailure(kCall, s);
  if (reuse != nullptr)
    if (Status s = checkHandle(reuse, comm); !s.isOk())
      return reportFailure(kCall, Status(s.code(), s.message() + "; pass *handle = NULL to create a new handle"),
                           &comm->lastError);
  if (Status s = checkCommHealthy(comm); !s.isOk()) return reportFailure(kCall, s, &comm->lastError);
  HandleSummary summary;
  if (Status s = checkRoutingArgs(comm->config, routing, &summary); !s.isOk())
    return reportFailure(kCall, s, &comm->lastError);
  if (Status s = checkLayoutArgs(comm->config, options, &summary.options); !s.isOk())
    return reportFailure(kCall, s, &comm->lastError);
  std::unique_ptr<ncclMoeHandle> fresh;
  if (reuse == nullptr) fresh = std::make_unique<ncclMoeHandle>();
  ncclMoeHandle* target = reuse ? reuse : fresh.get();
  if (Status s = createLayout(comm, summary, *routing, target, stream); !s.isOk())
    return reportFailure(kCall, s, &comm->lastError);
  if (fresh) {
    liveHandles().add(fresh.get());
    *handle = fresh.release();
  }
  return ncclSuccess;
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeHandleGetCounts(ncclMoeHandle_t handle, int64_t* recvRows,
                                                    int64_t* tokensPerExpert, int32_t* overflow) {
  constexpr const char* kCall = "ncclMoeHandleGetCounts";
  if (Status s = checkHandle(handle, nullptr); !s.isOk()) return reportFailure(kCall, s);
  if (Status s = checkLaidOut(handle); !s.isOk()) return reportFailure(kCall, s, &handle->comm->lastError);
  if (recvRows == nullptr) return reportFailure(kCall, Status::invalidArgument("recvRows is NULL"));
  if (Status s = readCounts(handle, recvRows, tokensPerExpert, overflow); !s.isOk())
    return reportFailure(kCall, s, &handle->comm->lastError);
  return ncclSuccess;
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeHandleGetDeviceCounts(ncclMoeHandle_t handle,
                                                          const int64_t** recvRows,
                                                          const int64_t** tokensPerExpert,
                                                          const int32_t** overflow) {
  constexpr const char* kCall = "ncclMoeHandleGetDeviceCounts";
  if (Status s = checkHandle(handle, nullptr); !s.isOk()) return reportFailure(kCall, s);
  if (Status s = checkLaidOut(handle); !s.isOk()) return reportFailure(kCall, s, &handle->comm->lastError);
  const bool expertMajor = handle->summary.options.layout == OutputLayout::kExpertMajor;
  if (recvRows) *recvRows = expertMajor ? &handle->device.counts->recvRows : &handle->device.counts->recvPairs;
  if (tokensPerExpert) *tokensPerExpert = handle->device.tokensPerExpert;
  if (overflow) *overflow = &handle->device.counts->overflow;
  return ncclSuccess;
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeHandleDestroy(ncclMoeHandle_t handle) {
  if (handle == nullptr)
    return reportFailure("ncclMoeHandleDestroy", Status::invalidArgument("handle is NULL"));
  if (!liveHandles().remove(handle))
    return reportFailure("ncclMoeHandleDestroy",
                         Status::invalidArgument("handle is not a live ncclMoeHandle_t"));
  // Work already enqueued may still read the handle's arrays.
  if (handle->countsReady.get()) {
    if (liveComms().contains(handle->comm) && handle->comm->id == handle->commId)
      (void)quiesce(handle->comm);
    else
      cudaDeviceSynchronize();
  }
  delete handle;
  return ncclSuccess;
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeDispatch(ncclMoeComm_t comm, ncclMoeHandle_t handle,
                                             const ncclMoeDispatchArgs_t* args, cudaStream_t stream) {
  constexpr const char* kCall = "ncclMoeDispatch";
  if (Status s = checkComm(comm); !s.isOk()) return reportFailure(kCall, s);
  if (Status s = checkHandle(handle, comm); !s.isOk()) return reportFailure(kCall, s, &comm->lastError);
  if (Status s = checkLaidOut(handle); !s.isOk()) return reportFailure(kCall, s, &comm->lastError);
  if (Status s = checkCommHealthy(comm); !s.isOk()) return reportFailure(kCall, s, &comm->lastError);
  if (Status s = checkDispatchArgs(comm->config, handle->summary, args); !s.isOk())
    return reportFailure(kCall, s, &comm->lastError);
  if (Status s = runDispatch(comm, handle, *args, stream); !s.isOk()) return reportFailure(kCall, s, &comm->lastError);
  return ncclSuccess;
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeCombine(ncclMoeComm_t comm, ncclMoeHandle_t handle,
                                            const ncclMoeCombineArgs_t* args, cudaStream_t stream) {
  constexpr const char* kCall = "ncclMoeCombine";
  if (Status s = checkComm(comm); !s.isOk()) return reportFailure(kCall, s);
  if (Status s = checkHandle(handle, comm); !s.isOk()) return reportFailure(kCall, s, &comm->lastError);
  if (Status s = checkLaidOut(handle); !s.isOk()) return reportFailure(kCall, s, &comm->lastError);
  if (Status s = checkCommHealthy(comm); !s.isOk()) return reportFailure(kCall, s, &comm->lastError);
  if (Status s = checkCombineArgs(comm->config, handle->summary, args); !s.isOk())
    return reportFailure(kCall, s, &comm->lastError);
  if (Status s = runCombine(comm, handle, *args, stream); !s.isOk()) return reportFailure(kCall, s, &comm->lastError);
  return ncclSuccess;
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeLowLatencyDispatch(ncclMoeComm_t comm, const ncclMoeLowLatencyDispatchArgs_t* args,
                                                       cudaStream_t stream) {
  constexpr const char* kCall = "ncclMoeLowLatencyDispatch";
  return lowLatencyCall(kCall, comm, [&] { return runLowLatencyDispatch(comm, args, kLowLatencyBoth, kCall, stream); });
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeLowLatencyDispatchSend(ncclMoeComm_t comm,
                                                           const ncclMoeLowLatencyDispatchArgs_t* args,
                                                           cudaStream_t stream) {
  constexpr const char* kCall = "ncclMoeLowLatencyDispatchSend";
  return lowLatencyCall(kCall, comm, [&] { return runLowLatencyDispatch(comm, args, kLowLatencySend, kCall, stream); });
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeLowLatencyDispatchRecv(ncclMoeComm_t comm, cudaStream_t stream) {
  constexpr const char* kCall = "ncclMoeLowLatencyDispatchRecv";
  return lowLatencyCall(kCall, comm,
                        [&] { return runLowLatencyDispatch(comm, nullptr, kLowLatencyReceive, kCall, stream); });
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeLowLatencyCombine(ncclMoeComm_t comm, const ncclMoeLowLatencyCombineArgs_t* args,
                                                      cudaStream_t stream) {
  constexpr const char* kCall = "ncclMoeLowLatencyCombine";
  return lowLatencyCall(kCall, comm, [&] { return runLowLatencyCombine(comm, args, kLowLatencyBoth, kCall, stream); });
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeLowLatencyCombineSend(ncclMoeComm_t comm,
                                                          const ncclMoeLowLatencyCombineArgs_t* args,
                                                          cudaStream_t stream) {
  constexpr const char* kCall = "ncclMoeLowLatencyCombineSend";
  return lowLatencyCall(kCall, comm, [&] { return runLowLatencyCombine(comm, args, kLowLatencySend, kCall, stream); });
}

NCCL_MOE_EXPORT ncclResult_t ncclMoeLowLatencyCombineRecv(ncclMoeComm_t comm, cudaStream_t stream) {
  constexpr const char* kCall = "ncclMoeLowLatencyCombineRecv";
  return lowLatencyCall(kCall, comm,
                        [&] { return runLowLatencyCombine(comm, nullptr, kLowLatencyReceive, kCall, stream); });
}
