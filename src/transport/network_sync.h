// The two small kernels around each network group of the rail exchange (transport/rail_exchange.h)
// that tie it to the kernels of a call: host entry points.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "transport/domain_view.h"

namespace nccl_moe {

// The network phase's hooks (transport/network_sync.cu), around each NCCL group. `status` is the
// group's status words: [0] this rank's RailStatus (sent to every rail peer with rows), [1 + n] the
// one received from the rail peer in domain n. Prologue: the call's epoch into *epochOut, this
// rank's status (failed if a kernel before it failed), the received ones cleared. Signal: store
// *epoch (chunk < 0) or chunkSignal(*epoch, chunk) into `phase` of the domain peers (or this rank
// only), unless this rank has failed or a rail peer sent kRailStatusFailed (then this rank records
// kErrorRailPeerFailed).
cudaError_t launchNetworkPrologue(const DomainView& view, uint64_t* epochOut, uint64_t* status, cudaStream_t stream);
cudaError_t launchNetworkSignal(const DomainView& view, int phase, bool selfOnly, int chunk, const uint64_t* epoch,
                                const uint64_t* status, cudaStream_t stream);

// With lazy module loading (CUDA's default) the first launch of a kernel loads it, and a load may
// wait for the kernels running on the device: load them when the communicator is created.
cudaError_t preloadNetworkKernels();

}  // namespace nccl_moe
