// The objects behind the public opaque handles, and the host side of the call pipelines (one
// NVLink domain, and the two-hop path over the rail exchange).
#pragma once

#include <nccl.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/call_checks.h"
#include "core/cluster_view.h"
#include "core/config.h"
#include "core/low_latency.h"
#include "misc/cuda_memory.h"
#include "misc/last_error.h"
#include "kernels/kernel_args.h"
#include "core/network_jobs.h"
#include "core/phase_clock.h"
#include "transport/control_comm.h"
#include "transport/peer_buffer.h"
#include "transport/rail_exchange.h"

struct ncclMoeComm {
  ncclComm_t nccl = nullptr;
  int rank = 0;
  int ranks = 0;
  int device = 0;
  nccl_moe::CommConfig config;
  nccl_moe::GroupDims dims;
  int domainRanks = 0;  // D: ranks per NVLink domain (consecutive)
  int domains = 1;      // M
  int requestedNetChunks = 1;  // two-hop: the chunk count asked for (the plan's or NCCL_MOE_NET_CHUNKS)
  int layoutEngine = 2;  // NCCL_MOE_LAYOUT_ENGINE: 2 count-first in one kernel (one domain), 1 in two, 0 the scan engine
  std::unique_ptr<nccl_moe::PeerBuffer> buffer;
  std::unique_ptr<nccl_moe::RailExchange> rail;  // two-hop only: the network phase
  nccl_moe::NetworkJobs networkJobs;              // two-hop only: what each network group moves
  nccl_moe::NetworkJobs fittedJobs;               // two-hop only: per-call copies fitted to row counts
  // Two-hop only: the plan's SM split while the network phase runs. NCCL's kernels of the rail
  // communicator get at most networkCtas CTAs; the kernels that run beside them use the rest of
  // the op's budget (*SmsBeside); kernels that run alone use the whole budget.
  int networkCtas = 0;
  int dispatchSmsBeside = 0;
  int combineSmsBeside = 0;
  nccl_moe::DeviceMemory<nccl_moe::DeviceEpochs> epochs;
  nccl_moe::DeviceMemory<nccl_moe::ErrorRecord> errorDevice;
  nccl_moe::PinnedMemory<nccl_moe::ErrorRecord> errorHost;
  nccl_moe::DeviceMemory<uint64_t> faultKey;
  nccl_moe::DomainView view;
  nccl_moe::ClusterView cluster;
  nccl_moe::PhaseClock clock;  // ncclMoeCommSetPhaseTiming
  std::string unusableSince;  // a host-side failure that left the communicator unusable (a failed resize)
  bool inputsExposed = false;  // ncclMoeCommGetInputBuffers was called: calls end once peers read them
  uint64_t id = 0;  // unique in the process: a handle of an earlier communicator at the same address is stale
  nccl_moe::SharedErrorMessage lastError;  // any thread may write it: read through lastErrorCopy
  // The low-latency mode (core/low_latency.h): null when it is off. Declared after `rail`, so that
  // it goes first (its network groups run on the rail exchange).
  std::unique_ptr<nccl_moe::LowLatencyState> lowLatency;
  // The library's own communicator for host-side exchanges (transport/control_comm.h). Declared
  // last so that it goes first: after a failure it is aborted before any memory is freed.
  std::unique_ptr<nccl_moe::ControlComm> control;
};

struct ncclMoeHandle {
  ncclMoeComm* comm = nullptr;
  uint64_t commId = 0;
  nccl_moe::HandleSummary summary;
  int64_t pairCapacity = 0;
  int64_t rowCapacity = 0;
  nccl_moe::DeviceMemory<uint8_t> memory;     // every device array of `device`
  nccl_moe::HandleDevice device{};
  nccl_moe::PinnedMemory<uint8_t> hostCounts;  // HandleCounts, then tokensPerExpert [L]
  uint8_t* hostCountsDevice = nullptr;          // hostCounts as kernels address it (mapped)
  nccl_moe::CudaEvent countsReady;
  uint64_t layouts = 0;  // eager layouts enqueued on this handle: the last one's HandleDevice::countsTag
  // Its last ncclMoeLayoutCreate succeeded. A layout that fails after it began to rewrite the
  // handle clears this, and every use but another layout is refused until one succeeds.
  bool laidOut = false;
};

namespace nccl_moe {

// Region offsets of each rank's peer-visible buffer for a configuration (pure host arithmetic).
// domains == 1: the single-domain regions only.
BufferLayout computeBufferLayout(const CommConfig& config, int ranks, int domainRanks, int domains);
GroupDims groupDimsOf(const CommConfig& config, int domains);

// ncclMoeCommResize: collective; every rank passes the same maxTokensPerRank. On failure the
// communicator is unchanged unless the status says it is unusable.
Status resizeComm(ncclMoeComm* comm, int maxTokensPerRank);

// ncclMoeCommGetInfo: what creation decided (plan, budgets, buffer sizes), header fields untouched.
void commInfo(const ncclMoeComm& comm, ncclMoeCommInfo_t* info);

// This rank's input areas of its peer-visible buffer (ncclMoeCommGetInputBuffers): the dispatch
// staging area (none with FP8 dispatch: it holds quantised rows) and the combine partials.
struct InputArea {
  void* begin = nullptr;
  size_t bytes = 0;
  bool contains(const void* p) const {
    const auto* at = static_cast<const uint8_t*>(p);
    const auto* first = static_cast<const uint8_t*>(begin);
    return begin != nullptr && at >= first && at < first + bytes;
  }
};
struct InputAreas {
  InputArea dispatch;
  InputArea combine;
  InputArea staging;  // the whole dispatch staging region (rows and FP8 scales)
};
InputAreas inputAreas(const ncclMoeComm& comm);

// Collective: queries the NCCL communicator, maps the domain's buffers.
Status createComm(ncclComm_t nccl, const ncclMoeConfig_t* config, std::unique_ptr<ncclMoeComm>* out);
// Waits for this rank's work on the device; after a failure it first aborts the network phase.
Status quiesce(ncclMoeComm* comm);
// Waits for this rank's work and (unless the communicator failed) for every peer's, then frees.
Status destroyComm(ncclMoeComm* comm);
// A failure recorded by a kernel (timeout), read from host-mapped memory without a sync.
Status asyncError(const ncclMoeComm& comm);

// Handle lifetime and the three collectives (host side; arguments already checked).
Status createLayout(ncclMoeComm* comm, const HandleSummary& summary, const ncclMoeRouting_t& routing,
                    ncclMoeHandle* handle, cudaStream_t stream);
Status readCounts(ncclMoeHandle* handle, int64_t* recvRows, int64_t* tokensPerExpert, int32_t* overflow);
Status runDispatch(ncclMoeComm* comm, ncclMoeHandle* handle, const ncclMoeDispatchArgs_t& args, cudaStream_t stream);
Status runCombine(ncclMoeComm* comm, ncclMoeHandle* handle, const ncclMoeCombineArgs_t& args, cudaStream_t stream);

}  // namespace nccl_moe
