// Host side of layout, dispatch and combine: handle memory, kernel arguments, counts for the host,
// and the one-domain pipelines (the two-hop ones: core/two_hop.cc).
#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/call_phases.h"
#include "core/comm.h"
#include "core/two_hop.h"
#include "misc/host_wait.h"
#include "kernels/launch.h"
#include "plan/routing.h"

namespace nccl_moe {

namespace {

// Carves typed arrays out of one allocation, 256-byte aligned.
class Carver {
 public:
  template <class T>
  T* take(size_t count) {
    const size_t at = offset_;
    offset_ = (offset_ + count * sizeof(T) + 255) / 256 * 256;
    return reinterpret_cast<T*>(base_ + at);
  }
  void setBase(uint8_t* base) {
    base_ = base;
    offset_ = 0;
  }
  size_t used() const { return offset_; }

 private:
  uint8_t* base_ = nullptr;
  size_t offset_ = 0;
};

// The count-first layout's tickets and chunk flags (HandleDevice::layoutTickets, chunkReady).
size_t layoutSyncWords(const ncclMoeComm& comm) {
  const size_t chunks = (static_cast<size_t>(comm.dims.maxTokens) + kLayoutScanChunk - 1) / kLayoutScanChunk;
  return kLayoutTickets + chunks;
}

void carveHandle(Carver& carver, const ncclMoeComm& comm, int64_t pairCapacity, int64_t rowCapacity, bool expertMajor,
                 HandleDevice* d) {
  const size_t R = comm.ranks, W = comm.dims.metaWidth, L = comm.dims.localExperts, T = comm.dims.maxTokens;
  const size_t M = comm.domains;
  const bool twoHop = M > 1;
  d->counts = carver.take<HandleCounts>(1);
  d->tokensPerExpert = carver.take<int64_t>(L);
  d->groupCounts = carver.take<int32_t>(R * comm.dims.experts);
  d->groupHits = carver.take<int32_t>(R * R);
  d->tokenSlot = carver.take<int32_t>(R * T);
  d->recvPairs = carver.take<RecvEntry>(pairCapacity);
  d->pairRows = carver.take<int32_t>(expertMajor ? pairCapacity * W : 0);
  d->recvRows = carver.take<RecvEntry>(rowCapacity);
  d->recvRowProb = carver.take<float>(rowCapacity);
  d->pairSel = carver.take<MetaSelection>(pairCapacity * W);
  d->routePairs = carver.take<SendPair>(M * T * W);
  d->routePairCount = carver.take<int32_t>(M * T);
  d->sendPairs = d->routePairs + comm.view.domain * T * W;
  d->sendPairCount = d->routePairCount + comm.view.domain * T;
  d->routeTokens = carver.take<int32_t>(M);
  d->netIndex = twoHop ? carver.take<int32_t>(R * T) : nullptr;
  d->relayIndex = twoHop ? carver.take<int32_t>(M * T) : nullptr;
  d->packIndex = twoHop ? carver.take<int32_t>(M * T) : nullptr;
  d->routeSelPair = twoHop ? carver.take<int32_t>(M * T * W) : nullptr;
  d->netRows = twoHop ? carver.take<int32_t>(2 * M) : nullptr;
  d->ownSel = carver.take<OwnSelection>(T * W);
  d->pairBase = carver.take<int64_t>(R);
  d->rowBase = carver.take<int64_t>(R * L);
  d->segmentStart = carver.take<int64_t>(L);
  d->segmentKept = carver.take<int64_t>(L);
  d->segmentPairs = carver.take<int64_t>(L);
  // The layout's chunk counts, chunks of 256 tokens: per item (scan engine, kernels/layout.cu) or
  // per counter of ranks, experts and domains (count-first, kernels/layout_count_first.cu).
  const size_t chunks = (T + kLayoutScanChunk - 1) / kLayoutScanChunk;
  d->scanCounts = carver.take<int32_t>((R + comm.dims.experts + M) * chunks);
  d->layoutTickets = carver.take<int32_t>(layoutSyncWords(comm));
  d->chunkReady = d->layoutTickets + kLayoutTickets;
}

// Where the host copy's tag word lies: after its arrays, 8-byte aligned.
size_t hostCountsTagOffset(const ncclMoeComm& comm) {
  const size_t net = comm.domains > 1 ? 2 * static_cast<size_t>(comm.domains) * sizeof(int32_t) : 0;
  const size_t arrays = sizeof(HandleCounts) + comm.dims.localExperts * sizeof(int64_t) + net;
  return (arrays + sizeof(uint64_t) - 1) / sizeof(uint64_t) * sizeof(uint64_t);
}

// The host copy's arrays as kernels address them (call_phases.h gives the layout).
void pointHostCounts(const ncclMoeComm& comm, uint8_t* hostCountsDevice, HandleDevice* d) {
  d->hostCounts = reinterpret_cast<HandleCounts*>(hostCountsDevice);
  d->hostTokensPerExpert = reinterpret_cast<int64_t*>(hostCountsDevice + sizeof(HandleCounts));
  d->hostNetRows = comm.domains > 1 ? reinterpret_cast<int32_t*>(hostCountsDevice + sizeof(HandleCounts) +
                                                                 comm.dims.localExperts * sizeof(int64_t))
                                    : nullptr;
  d->hostCountsTag = reinterpret_cast<uint64_t*>(hostCountsDevice + hostCountsTagOffset(comm));
}

// The scan engine's way to the host copy: copies after its kernels (the count-first scan kernel
// writes the host copy itself).
Status copyCountsToHost(const ncclMoeComm& comm, const ncclMoeHandle& handle, cudaStream_t stream) {
  const HandleDevice& device = handle.device;
  uint8_t* host = handle.hostCounts.get();
  if (Status s = cudaStatus(cudaMemcpyAsync(host, device.counts, sizeof(HandleCounts), cudaMemcpyDeviceToHost, stream),
                            "cudaMemcpyAsync(counts)");
      !s.isOk())
    return s;
  if (Status s = cudaStatus(cudaMemcpyAsync(host + sizeof(HandleCounts), device.tokensPerExpert,
                                            comm.dims.localExperts * sizeof(int64_t), cudaMemcpyDeviceToHost, stream),
                            "cudaMemcpyAsync(tokensPerExpert)");
      !s.isOk())
    return s;
  if (device.netRows == nullptr) return Status::ok();
  return cudaStatus(cudaMemcpyAsync(hostNetRows(handle), device.netRows, 2 * comm.domains * sizeof(int32_t),
                                    cudaMemcpyDeviceToHost, stream),
                    "cudaMemcpyAsync(network rows)");
}

Status routingFaultStatus(const ncclMoeComm& comm, const HandleCounts& counts) {
  RoutingFaultRecord record;
  record.fault = static_cast<RoutingFault>(counts.faultKind);
  record.token = counts.faultToken;
  record.slot = counts.faultSlot;
  record.value = counts.faultValue;
  return Status::invalidArgument(describeRoutingFault(record, counts.faultRank, comm.config.shape) +
                                 " (nothing was moved on any rank)");
}


// Bytes of the pinned host copy of a handle's counts (core/call_phases.h).
size_t hostCountsBytes(const ncclMoeComm& comm) { return hostCountsTagOffset(comm) + sizeof(uint64_t); }


// A routing fault the host already knows about (the layout has finished), without waiting. Not
// while the stream is being captured into a graph: the event then belongs to the capture.
Status knownFault(const ncclMoeHandle& handle, cudaStream_t stream) {
  if (streamIsCapturing(stream)) return Status::ok();
  if (cudaEventQuery(handle.countsReady.get()) != cudaSuccess) return Status::ok();
  const HandleCounts& counts = hostCountsOf(handle);
  return counts.fault ? routingFaultStatus(*handle.comm, counts) : Status::ok();
}

// A zero-copy input is the whole area (its start), never a pointer inside it.
Status checkInputArea(const InputArea& area, const void* x, const char* which, const char* argument) {
  if (!area.contains(x) || x == area.begin) return Status::ok();
  return Status::invalidArgument(format("%s points inside the communicator's %s input area at offset %zu: pass the "
                                        "area's start (ncclMoeCommGetInputBuffers) or memory of your own",
                                        argument, which,
                                        static_cast<size_t>(static_cast<const uint8_t*>(x) -
                                                            static_cast<const uint8_t*>(area.begin))));
}

// What a dispatch or combine on a laid-out handle does first: fail on a routing fault the host
// already knows about; two-hop, learn whether the network rows are known exactly.
Status startDataCall(const ncclMoeComm& comm, const ncclMoeHandle& handle, cudaStream_t stream, bool* exact) {
  if (Status s = knownFault(handle, stream); !s.isOk()) return s;
  *exact = false;
  return comm.rail ? exactNetworkRows(handle, stream, exact) : Status::ok();
}

// Times a dispatch or combine as `op` and enqueues it: with one domain its one kernel (`launch`,
// returning the launch's cudaError_t), timed as `phase`; with several the two-hop pipeline
// (`twoHop`, core/two_hop.cc), which times its own phases.
template <class Launch, class TwoHop>
Status runTimed(ncclMoeComm* comm, TimedOp op, ncclMoePhase_t phase, const char* what, cudaStream_t stream,
                const Launch& launch, const TwoHop& twoHop) {
  if (Status s = comm->clock.startCall(op, stream); !s.isOk()) return s;
  if (comm->rail) return twoHop();
  return inPhase(comm->clock, phase, stream, [&] { return cudaStatus(launch(), what); });
}

}  // namespace

const HandleCounts& hostCountsOf(const ncclMoeHandle& handle) {
  return *reinterpret_cast<const HandleCounts*>(handle.hostCounts.get());
}

int32_t* hostNetRows(const ncclMoeHandle& handle) {
  return reinterpret_cast<int32_t*>(handle.hostCounts.get() + sizeof(HandleCounts) +
                                    handle.comm->dims.localExperts * sizeof(int64_t));
}

Status createLayout(ncclMoeComm* comm, const HandleSummary& summary, const ncclMoeRouting_t& routing,
                    ncclMoeHandle* handle, cudaStream_t stream) {
  const bool expertMajor = summary.options.layout == OutputLayout::kExpertMajor;
  const int64_t pairCapacity = static_cast<int64_t>(comm->ranks) * comm->dims.maxTokens;
  const int64_t pad = summary.options.effectivePad();
  int64_t rowCapacity = 0;
  if (expertMajor)
    rowCapacity = summary.options.budgeted()
                      ? summary.options.rowBudget
                      : pairCapacity * std::min(comm->dims.metaWidth, comm->dims.localExperts) +
                            comm->dims.localExperts * (pad - 1);

  // Reuse the handle's memory when it fits (the allocation-free path CUDA graphs need).
  const bool fits = handle->memory.get() != nullptr && handle->device.expertMajor == expertMajor &&
                    handle->rowCapacity >= rowCapacity && handle->pairCapacity >= pairCapacity;
  // The count-first kernels leave their tickets and chunk flags at zero on every path (a routing
  // fault or a timeout still ends a kernel normally, each block taking its ticket), so a layout
  // enqueues no memset: they are zeroed only in new memory (cudaMalloc does not clear it) and, as a
  // precaution, after a layout that failed part-way. Only a kernel that never finishes (a trap,
  // which leaves the context unusable) could leave one set; after a timeout the communicator
  // refuses further layouts. Not epoch-stamped: the epoch advances only when a layout completes,
  // so the layout after a failed one would run with the same epoch and match its stale stamps.
  const bool clearSync = !fits || !handle->laidOut;
  if (!fits) {
    // Allocate beside the handle's memory and swap only when everything is there: a failed
    // allocation leaves the handle as it was.
    Carver sizing;
    HandleDevice scratch{};
    carveHandle(sizing, *comm, pairCapacity, rowCapacity, expertMajor, &scratch);
    DeviceMemory<uint8_t> memory;
    PinnedMemory<uint8_t> hostCounts;
    if (Status s = allocateDevice(sizing.used(), &memory, "cudaMalloc(layout handle)"); !s.isOk()) return s;
    if (Status s = allocateMapped(hostCountsBytes(*comm), &hostCounts, "cudaHostAlloc(counts)"); !s.isOk())
      return s;
    void* hostCountsDevice = nullptr;
    if (Status s = cudaStatus(cudaHostGetDevicePointer(&hostCountsDevice, hostCounts.get(), 0),
                              "cudaHostGetDevicePointer(counts)");
        !s.isOk())
      return s;
    if (handle->countsReady.get() == nullptr)
      if (Status s = handle->countsReady.create(); !s.isOk()) return s;
    handle->memory = std::move(memory);
    std::memset(hostCounts.get(), 0, hostCountsBytes(*comm));  // no tag yet (a new allocation is not zeroed)
    handle->hostCounts = std::move(hostCounts);
    handle->hostCountsDevice = static_cast<uint8_t*>(hostCountsDevice);
    handle->pairCapacity = pairCapacity;
    handle->rowCapacity = rowCapacity;
  }
  // From here the handle is being rewritten: until the end it describes no complete layout.
  handle->laidOut = false;
  Carver carver;
  carver.setBase(handle->memory.get());
  HandleDevice& device = handle->device;
  carveHandle(carver, *comm, handle->pairCapacity, handle->rowCapacity, expertMajor, &device);
  pointHostCounts(*comm, handle->hostCountsDevice, &device);
  device.pairCapacity = handle->pairCapacity;
  device.rowCapacity = handle->rowCapacity;
  device.expertMajor = expertMajor;
  device.padMultiple = static_cast<int32_t>(pad);
  device.rowBudget = summary.options.rowBudget;
  device.numTokens = routing.numTokens;
  device.routingFormat = static_cast<int32_t>(summary.format);
  handle->comm = comm;
  handle->commId = comm->id;
  handle->summary = summary;

  const LayoutInput input{routing, summary.options.budgeted() ? 0 : 1};
  const LaunchBudget budget = budgetOf(comm->config.dispatchSms);
  const bool countFirst = comm->layoutEngine >= 1;
  // Engine 2 with one NVLink domain: the count-first steps in one kernel (no network between them).
  const bool fused = comm->layoutEngine == 2 && comm->domains == 1;
  // The count-first kernels tag the host copy (HandleDevice::countsTag). A captured layout runs at
  // replay, when the host no longer waits for its tag: it stores none.
  device.countsTag = countFirst && !streamIsCapturing(stream) ? ++handle->layouts : 0;
  if (clearSync) {
    const size_t syncBytes = layoutSyncWords(*comm) * sizeof(int32_t);
    if (Status s = cudaStatus(cudaMemsetAsync(device.layoutTickets, 0, syncBytes, stream), "cudaMemsetAsync(tickets)");
        !s.isOk())
      return s;
  }
  PhaseClock& clock = comm->clock;
  if (Status s = clock.startCall(TimedOp::kLayout, stream); !s.isOk()) return s;
  if (Status s = inPhase(clock, ncclMoePhaseLayoutPublish, stream,
                         [&] {
                           const cudaError_t launched =
                               fused        ? launchCountFirstFused(comm->view, comm->dims, input, device,
                                                                    comm->faultKey.get(), budget, stream)
                               : countFirst ? launchCountFirstPublish(comm->view, comm->dims, input, device,
                                                                      comm->faultKey.get(), budget, stream)
                                            : launchLayoutPublish(comm->view, comm->dims, input, device,
                                                                  comm->faultKey.get(), budget, stream);
                           return cudaStatus(launched, "launch(layout publish)");
                         });
      !s.isOk())
    return s;
  if (comm->rail)
    if (Status s = runTwoHopLayoutNetwork(comm, stream); !s.isOk()) return s;
  if (!fused)
    if (Status s = inPhase(clock, ncclMoePhaseLayoutScan, stream,
                           [&] {
                             const cudaError_t launched =
                                 countFirst ? launchCountFirstScan(comm->view, comm->dims, device, budget, stream)
                                            : launchLayoutScan(comm->view, comm->dims, device, budget, stream);
                             return cudaStatus(launched, "launch(layout scan)");
                           });
        !s.isOk())
      return s;
  // Count-first: the scan kernel has written the host copy (the event below says when it is there).
  if (!countFirst)
    if (Status s = copyCountsToHost(*comm, *handle, stream); !s.isOk()) return s;
  if (Status s = cudaStatus(cudaEventRecord(handle->countsReady.get(), stream), "cudaEventRecord"); !s.isOk())
    return s;
  handle->laidOut = true;
  return Status::ok();
}

// Returns once the host copy holds the last layout's counts: when its tag arrives (the count-first
// kernel stores it before placing the rows, so the caller's dispatch is enqueued while the layout
// still runs; DeepEP's host reads its counts from mapped memory the same way), else when the
// layout has completed. The tag is polled for kTagSpin at most: a layout still waiting for a late
// peer after that is waited for with the event, which does not keep a core busy for the timeout.
Status waitForCounts(const ncclMoeHandle& handle) {
  constexpr auto kTagSpin = std::chrono::microseconds(2000);
  const uint64_t awaited = handle.device.countsTag;
  const auto* tag =
      reinterpret_cast<const volatile uint64_t*>(handle.hostCounts.get() + hostCountsTagOffset(*handle.comm));
  if (awaited != 0 && spinForTag(tag, awaited, kTagSpin)) return Status::ok();
  return cudaStatus(cudaEventSynchronize(handle.countsReady.get()), "cudaEventSynchronize(layout)");
}

Status readCounts(ncclMoeHandle* handle, int64_t* recvRows, int64_t* tokensPerExpert, int32_t* overflow) {
  if (Status s = waitForCounts(*handle); !s.isOk()) return s;
  if (Status s = asyncError(*handle->comm); !s.isOk()) return s;
  const HandleCounts& counts = hostCountsOf(*handle);
  if (counts.fault) return routingFaultStatus(*handle->comm, counts);
  const bool expertMajor = handle->summary.options.layout == OutputLayout::kExpertMajor;
  *recvRows = expertMajor ? counts.recvRows : counts.recvPairs;
  handle->summary.knownRecvRows = *recvRows;
  if (tokensPerExpert) {
    const auto* perExpert = reinterpret_cast<const int64_t*>(handle->hostCounts.get() + sizeof(HandleCounts));
    std::copy(perExpert, perExpert + handle->comm->dims.localExperts, tokensPerExpert);
  }
  if (overflow) *overflow = counts.overflow;
  return Status::ok();
}

Status runDispatch(ncclMoeComm* comm, ncclMoeHandle* handle, const ncclMoeDispatchArgs_t& args, cudaStream_t stream) {
  bool exact = false;
  if (Status s = startDataCall(*comm, *handle, stream, &exact); !s.isOk()) return s;
  const InputAreas areas = inputAreas(*comm);
  if (Status s = checkInputArea(areas.dispatch, args.x, "dispatch", "ncclMoeDispatchArgs_t.x"); !s.isOk()) return s;
  // FP8 dispatch: the staging area holds the quantised rows the kernel writes (no input area).
  if (comm->config.fp8Dispatch && areas.staging.contains(args.x))
    return Status::invalidArgument(
        "ncclMoeDispatchArgs_t.x points into the communicator's FP8 staging area, which the dispatch overwrites");
  const DispatchOutputs outputs{args, handle->summary.topk, args.x != nullptr && args.x == areas.dispatch.begin,
                                comm->inputsExposed};
  const LaunchBudget budget = budgetOf(comm->config.dispatchSms);
  return runTimed(
      comm, TimedOp::kDispatch, ncclMoePhaseDispatchNvlink, "launch(dispatch)", stream,
      [&] { return launchDispatch(comm->view, comm->dims, handle->device, outputs, budget, stream); },
      [&] { return runTwoHopDispatch(comm, handle, outputs, exact, stream); });
}

Status runCombine(ncclMoeComm* comm, ncclMoeHandle* handle, const ncclMoeCombineArgs_t& args, cudaStream_t stream) {
  bool exact = false;
  if (Status s = startDataCall(*comm, *handle, stream, &exact); !s.isOk()) return s;
  const InputArea area = inputAreas(*comm).combine;
  if (Status s = checkInputArea(area, args.x, "combine", "ncclMoeCombineArgs_t.x"); !s.isOk()) return s;
  const bool xInBuffer = args.x != nullptr && args.x == area.begin;
  if (xInBuffer && handle->summary.options.layout == OutputLayout::kExpertMajor)
    return Status::invalidUsage(
        "ncclMoeCombineArgs_t.x is the combine input area, which needs a per-rank handle: an expert-major "
        "handle's rows are summed per token and rank into that area first");
  const CombineBuffers buffers{args, handle->summary.topk, xInBuffer, comm->inputsExposed};
  const LaunchBudget budget = budgetOf(comm->config.combineSms);
  return runTimed(
      comm, TimedOp::kCombine, ncclMoePhaseCombineNvlink, "launch(combine)", stream,
      [&] { return launchCombine(comm->view, comm->dims, handle->device, buffers, budget, stream); },
      [&] { return runTwoHopCombine(comm, handle, buffers, exact, stream); });
}

}  // namespace nccl_moe
