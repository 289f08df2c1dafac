// The two-hop (HybridEP) path on the host, in one place: the SM split while the network phase
// runs, the rail exchange's set-up, and the layout, dispatch and combine pipelines across NVLink
// domains (the NVLink kernels of each hop beside NCCL point-to-point between rail peers, in
// chunks). The transfers themselves: core/network_jobs.h; their issue and watchdog:
// transport/rail_exchange.h; the kernels: kernels/launch.h.
#pragma once

#include <cuda_runtime.h>

#include "core/comm.h"
#include "kernels/launch.h"
#include "misc/status.h"

namespace nccl_moe {

// The plan's split of the SM budget (after any cap) while the network phase runs: NCCL's share
// for the rail communicator, the rest for the kernels beside it; at least one SM each. Nothing with
// one domain.
void splitSmsForNetwork(ncclMoeComm* comm, double networkShare);
// Collective (every rank, several domains): the rail communicator and its exchange, every transfer
// rehearsed once.
Status setUpRailExchange(ncclMoeComm* comm);

// Whether the network transfers of a call on `handle` carry exactly the rows the layout counted
// (refused while capturing: such a call's sizes are this layout's).
Status exactNetworkRows(const ncclMoeHandle& handle, cudaStream_t stream, bool* exact);

// The layout's network step: every rank's routing meta to its rail peers.
Status runTwoHopLayoutNetwork(ncclMoeComm* comm, cudaStream_t stream);
// Dispatch and combine across domains, after the call's clock started.
Status runTwoHopDispatch(ncclMoeComm* comm, ncclMoeHandle* handle, const DispatchOutputs& outputs, bool exact,
                         cudaStream_t stream);
Status runTwoHopCombine(ncclMoeComm* comm, ncclMoeHandle* handle, const CombineBuffers& buffers, bool exact,
                        cudaStream_t stream);

}  // namespace nccl_moe
