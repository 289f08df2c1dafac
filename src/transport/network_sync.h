// The two small kernels around each network group of the rail exchange (transport/rail_exchange.h)
// that tie it to the kernels of a call: host entry points.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "transport/domain_view.h"

namespace nccl_moe {

// The network phase's hooks (transport/network_sync.cu), around each NCCL group. Prologue: the
// call's epoch into *epochOut. Signal: store *epoch (chunk < 0) or chunkSignal(*epoch, chunk) into
// `phase` of the domain peers (or this rank only), unless this rank has failed.
cudaError_t launchNetworkPrologue(const DomainView& view, uint64_t* epochOut, cudaStream_t stream);
cudaError_t launchNetworkSignal(const DomainView& view, int phase, bool selfOnly, int chunk, const uint64_t* epoch,
                                cudaStream_t stream);

// With lazy module loading (CUDA's default) the first launch of a kernel loads it, and a load may
// wait for the kernels running on the device: load them when the communicator is created.
cudaError_t preloadNetworkKernels();

}  // namespace nccl_moe
