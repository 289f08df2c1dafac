#include "core/two_hop.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/call_phases.h"
#include "core/network_jobs.h"
#include "misc/log.h"
#include "transport/rail_exchange.h"

namespace nccl_moe {

namespace {

// The chunk jobs of a call: whole slots, or (exact) fitted to the rows the layout counted. The
// fitted copies are the communicator's scratch, rewritten per call (NCCL copies what it needs
// when the group is enqueued).
const std::vector<RailJob>& callChunks(ncclMoeComm* comm, const ncclMoeHandle& handle, bool exact, bool dispatch) {
  if (!exact) return dispatch ? comm->networkJobs.dispatch : comm->networkJobs.combine;
  const int32_t* packed = hostNetRows(handle);          // rows my send slot for n holds
  const int32_t* relayed = packed + comm->domains;      // rows my receive slot from n holds
  std::vector<RailJob>& jobs = dispatch ? comm->fittedJobs.dispatch : comm->fittedJobs.combine;
  for (size_t c = 0; c < jobs.size(); ++c)
    fitToCounts(&jobs[c], static_cast<int64_t>(c) * comm->view.netChunkRows, dispatch ? packed : relayed,
                dispatch ? relayed : packed);
  return jobs;
}

}  // namespace

void splitSmsForNetwork(ncclMoeComm* comm, double networkShare) {
  if (comm->domains <= 1) return;
  const int budget = std::max(2, std::min(comm->config.dispatchSms, comm->config.combineSms));
  comm->networkCtas = std::clamp(static_cast<int>(std::lround(networkShare * budget)), 1, budget - 1);
  comm->dispatchSmsBeside = std::max(1, comm->config.dispatchSms - comm->networkCtas);
  comm->combineSmsBeside = std::max(1, comm->config.combineSms - comm->networkCtas);
  if (comm->rank == 0)
    logInfo("SM split while the network phase runs: NCCL (rail communicator) at most %d CTAs, dispatch %d and "
            "combine %d SMs beside it (budgets %d and %d)",
            comm->networkCtas, comm->dispatchSmsBeside, comm->combineSmsBeside, comm->config.dispatchSms,
            comm->config.combineSms);
}

Status setUpRailExchange(ncclMoeComm* comm) {
  if (Status s = RailExchange::create(comm->nccl, comm->device, comm->view, comm->config.timeoutMs, comm->networkCtas,
                                      &comm->rail);
      !s.isOk())
    return s;
  // Every transfer once while all ranks are here: NCCL sets up its connections and buffers now,
  // not in the middle of a call (the jobs are the buffer's: core/comm.cc addressBuffer).
  for (const RailJob* job : {&comm->networkJobs.meta, &comm->networkJobs.dispatch.front(),
                             &comm->networkJobs.combine.front()})
    if (Status s = comm->rail->rehearse(*job); !s.isOk()) return s;
  return Status::ok();
}

Status exactNetworkRows(const ncclMoeHandle& handle, cudaStream_t stream, bool* exact) {
  *exact = handle.summary.knownRecvRows >= 0 && hostCountsOf(handle).groupBlocking != 0;
  if (*exact && streamIsCapturing(stream))
    return Status::invalidUsage(
        "a two-hop dispatch or combine of a layout made in blocking mode on every rank moves the rows that layout "
        "counted and cannot be captured into a CUDA graph; capture calls of a layout with a row budget "
        "(non-blocking mode) instead");
  return Status::ok();
}

Status runTwoHopLayoutNetwork(ncclMoeComm* comm, cudaStream_t stream) {
  return inPhase(comm->clock, ncclMoePhaseLayoutNetwork, stream,
                 [&] { return comm->rail->issue(comm->networkJobs.meta, stream); });
}

Status runTwoHopDispatch(ncclMoeComm* comm, ncclMoeHandle* handle, const DispatchOutputs& outputs, bool exact,
                         cudaStream_t stream) {
  const LaunchBudget budget = budgetOf(comm->config.dispatchSms);
  PhaseClock& clock = comm->clock;
  if (Status s = inPhase(clock, ncclMoePhaseDispatchStage, stream,
                         [&] {
                           return cudaStatus(launchHybridDispatchStage(comm->view, comm->dims, handle->device,
                                                                       outputs, budget, stream),
                                             "launch(dispatch stage)");
                         });
      !s.isOk())
    return s;
  // The network chunks run on the exchange's stream beside the pull of this domain's rows; the rows
  // of chunk c are pulled once it has landed, beside the transfer of the chunks after it.
  RailExchange& rail = *comm->rail;
  const std::vector<RailJob>& chunks = callChunks(comm, *handle, exact, /*dispatch=*/true);
  if (Status s = rail.forkFrom(stream); !s.isOk()) return s;
  if (Status s = inPhase(clock, ncclMoePhaseDispatchNetwork, rail.stream(),
                         [&] {
                           for (const RailJob& chunk : chunks)
                             if (Status issued = rail.issueForked(chunk); !issued.isOk()) return issued;
                           return Status::ok();
                         });
      !s.isOk())
    return s;
  // Kernels beside the network chunks get the plan's NVLink share of the budget (the last chunk's
  // pull runs alone).
  const LaunchBudget beside = budgetOf(comm->dispatchSmsBeside);
  if (Status s = inPhase(clock, ncclMoePhaseDispatchNvlink, stream,
                         [&] {
                           return cudaStatus(launchHybridDispatchPull(comm->view, comm->dims, handle->device, outputs,
                                                                      kDirectRows, beside, stream),
                                             "launch(dispatch pull)");
                         });
      !s.isOk())
    return s;
  for (int c = 0; c < comm->view.netChunks; ++c) {
    if (Status s = rail.joinInto(stream, c); !s.isOk()) return s;
    const bool first = c == 0, last = c == comm->view.netChunks - 1;
    if (first)
      if (Status s = clock.begin(ncclMoePhaseDispatchForward, stream); !s.isOk()) return s;
    if (Status s = cudaStatus(launchHybridDispatchPull(comm->view, comm->dims, handle->device, outputs, c,
                                                       last ? budget : beside, stream),
                              "launch(dispatch pull)");
        !s.isOk())
      return s;
  }
  return clock.end(ncclMoePhaseDispatchForward, stream);
}

Status runTwoHopCombine(ncclMoeComm* comm, ncclMoeHandle* handle, const CombineBuffers& buffers, bool exact,
                        cudaStream_t stream) {
  const LaunchBudget budget = budgetOf(comm->config.combineSms);
  PhaseClock& clock = comm->clock;
  // Chunk c's domain partials go out while chunk c + 1's are summed (with the plan's NVLink share
  // of the budget; the first chunk, which also stages the rank partials, runs alone).
  RailExchange& rail = *comm->rail;
  const std::vector<RailJob>& jobs = callChunks(comm, *handle, exact, /*dispatch=*/false);
  const LaunchBudget beside = budgetOf(comm->combineSmsBeside);
  const int chunks = comm->view.netChunks;
  if (Status s = clock.begin(ncclMoePhaseCombineNvlink, stream); !s.isOk()) return s;
  for (int c = 0; c < chunks; ++c) {
    if (Status s = cudaStatus(launchHybridCombineCollect(comm->view, comm->dims, handle->device, buffers, c,
                                                         c == 0 ? budget : beside, stream),
                              "launch(combine collect)");
        !s.isOk())
      return s;
    if (Status s = rail.forkFrom(stream); !s.isOk()) return s;
    if (c == 0)
      if (Status s = clock.begin(ncclMoePhaseCombineNetwork, rail.stream()); !s.isOk()) return s;
    if (Status s = rail.issueForked(jobs[c]); !s.isOk()) return s;
  }
  if (Status s = clock.end(ncclMoePhaseCombineNvlink, stream); !s.isOk()) return s;
  if (Status s = clock.end(ncclMoePhaseCombineNetwork, rail.stream()); !s.isOk()) return s;
  if (Status s = rail.joinInto(stream, chunks - 1); !s.isOk()) return s;
  return inPhase(clock, ncclMoePhaseCombineReduce, stream, [&] {
    return cudaStatus(launchHybridCombineReduce(comm->view, comm->dims, handle->device, buffers, budget, stream),
                      "launch(combine reduce)");
  });
}

}  // namespace nccl_moe
