// The two small kernels around each network group (NCCL point-to-point on the rail communicator,
// transport/rail_exchange.h) that tie it to the kernels of a call.
#include "misc/launch_error.h"
#include "transport/device_sync.cuh"
#include "transport/network_sync.h"

namespace nccl_moe {

namespace {

// Before the NCCL group: the call's epoch into the job's slot (the group may be captured into a
// graph, so the epoch is read on the device at run time).
__global__ void networkPrologueKernel(DomainView view, uint64_t* epochOut, uint64_t* status) {
  if (threadIdx.x == 0) {
    *epochOut = callEpoch(view);
    status[0] = errorRaised(view) ? kRailStatusFailed : kRailStatusOk;
  }
  for (int n = threadIdx.x; n < view.domains; n += blockDim.x) status[1 + n] = kRailStatusNone;
}

// After the NCCL group: its transfers have landed (chunk >= 0: chunk `chunk` of a chunked phase).
// Not after a failure: an aborted group landed nothing (the watchdog records its timeout in the
// host-mapped record only).
__global__ void networkSignalKernel(DomainView view, int phase, int selfOnly, int chunk, const uint64_t* epoch,
                                    const uint64_t* status) {
  if (threadIdx.x != 0 || errorRaised(view)) return;
  if (*reinterpret_cast<volatile int32_t*>(&view.errorHost->kind) != kErrorNone) return;
  for (int n = 0; n < view.domains; ++n)
    if (n != view.domain && status[1 + n] == kRailStatusFailed) {
      raiseRailPeerFailure(view, n * view.localRanks + view.localRank, phase, chunk);
      return;
    }
  const uint64_t value = chunk < 0 ? *epoch : chunkSignal(*epoch, chunk);
  if (selfOnly)
    signalSelf(view, phase, value);
  else
    signalPeers(view, phase, value);
}

}  // namespace

cudaError_t preloadNetworkKernels() {
  cudaFuncAttributes attributes;
  cudaError_t err = cudaFuncGetAttributes(&attributes, networkPrologueKernel);
  if (err == cudaSuccess) err = cudaFuncGetAttributes(&attributes, networkSignalKernel);
  return err;
}

cudaError_t launchNetworkPrologue(const DomainView& view, uint64_t* epochOut, uint64_t* status, cudaStream_t stream) {
  discardEarlierLaunchError();
  networkPrologueKernel<<<1, 32, 0, stream>>>(view, epochOut, status);
  return cudaGetLastError();
}

cudaError_t launchNetworkSignal(const DomainView& view, int phase, bool selfOnly, int chunk, const uint64_t* epoch,
                                const uint64_t* status, cudaStream_t stream) {
  discardEarlierLaunchError();
  networkSignalKernel<<<1, 32, 0, stream>>>(view, phase, selfOnly ? 1 : 0, chunk, epoch, status);
  return cudaGetLastError();
}

}  // namespace nccl_moe
