#include "core/low_latency.h"

#include <cstdint>

#include "core/comm.h"
#include "core/low_latency_trace.h"
#include "misc/env.h"
#include "misc/log.h"

namespace nccl_moe {

namespace {

size_t aligned256(size_t bytes) { return (bytes + 255) / 256 * 256; }

// The shared shape of both LL calls (the mode already known to be available): check what this half
// needs (arguments, or an outstanding send half to complete), launch (`launch(args, outstanding)`
// with the number of send halves outstanding before this call), then record the send half or retire
// the oldest one.
template <class Args, class CheckArgs, class Launch>
Status runHalves(ncclMoeComm* comm, const Args* args, LowLatencyHalves halves, OutstandingHalves<Args>& outstanding,
                 CheckArgs checkArgs, Launch launch) {
  const bool sends = (halves & kLowLatencySend) != 0;
  if (sends) {
    if (Status s = checkArgs(comm->config, comm->rank, args); !s.isOk()) return s;
    if (Status s = halves == kLowLatencyBoth ? outstanding.checkFused() : outstanding.checkSend(); !s.isOk()) return s;
  } else if (Status s = outstanding.checkReceive(); !s.isOk()) {
    return s;
  }
  const Args& given = sends ? *args : outstanding.oldest();
  if (Status s = launch(given, outstanding.count()); !s.isOk()) return s;
  if (halves == kLowLatencySend) outstanding.push(given);
  if (halves == kLowLatencyReceive) outstanding.pop();
  return Status::ok();
}

// The parity of the network regions an operation uses: a send half takes the next one; a receive
// half alone completes the oldest of the `outstanding` send halves.
int networkParity(uint64_t sends, int outstanding, LowLatencyHalves halves) {
  return static_cast<int>(((halves & kLowLatencySend) ? sends : sends - static_cast<uint64_t>(outstanding)) % 2);
}

}  // namespace

LowLatencyShape lowLatencyShapeOf(const CommConfig& config, int ranks, int ranksPerDomain) {
  LowLatencyShape shape;
  shape.ranks = ranks;
  shape.ranksPerDomain = ranksPerDomain;
  shape.experts = config.shape.experts;
  shape.hidden = config.shape.hidden;
  shape.maxTopk = config.shape.maxTopk;
  shape.maxTokens = config.lowLatencyMaxTokens;
  shape.fp8 = config.lowLatencyFp8 != 0;
  shape.powerOfTwoScales = config.lowLatencyFp8 == 2;
  return shape;
}

LowLatencyScratch lowLatencyScratchOf(const LowLatencyShape& shape) {
  const size_t N = shape.maxTokens, K = shape.maxTopk;
  LowLatencyScratch s;
  s.counters = aligned256(sizeof(LowLatencyCounters));
  s.stashKept = aligned256(2 * N * K * sizeof(int32_t));
  s.stashWeights = aligned256(2 * N * K * sizeof(float));
  const int M = shape.domains();
  s.netTails = M > 1 ? aligned256(static_cast<size_t>(lowLatencyNetTailIndex(kLowLatencyNetKinds, 0, 0, 0, M)) *
                                  static_cast<size_t>(lowLatencyNetTailBytes(shape)))
                     : 0;
  s.total = s.counters + s.stashKept + s.stashWeights + s.netTails;
  return s;
}

LowLatencyState::~LowLatencyState() {
  if (trace_.get() == nullptr) return;
  LowLatencyTrace trace{};
  if (cudaMemcpy(&trace, trace_.get(), sizeof(trace), cudaMemcpyDeviceToHost) != cudaSuccess) return;
  for (LowLatencyTraceOp op : {kTraceDispatch, kTraceCombine}) {
    const std::string line = describeLowLatencyTrace(trace, op);
    if (!line.empty()) logWarnByDefault("rank %d: LL trace: %s", view_.rank, line.c_str());
  }
}

Status LowLatencyState::create(ncclMoeComm& comm, std::unique_ptr<LowLatencyState>* out) {
  const LowLatencyShape shape = lowLatencyShapeOf(comm.config, comm.ranks, comm.domainRanks);
  if (Status s = checkLowLatencyShape(shape); !s.isOk()) return s;
  const bool twoHop = shape.domains() > 1;
  if (twoHop && !comm.rail)
    return Status::invalidUsage(format("rank %d: the two-hop low-latency path needs the rail exchange", comm.rank));
  const LowLatencyRegions regions = lowLatencyRegionsOf(shape);
  const LowLatencyScratch scratch = lowLatencyScratchOf(shape);
  std::unique_ptr<LowLatencyState> state(new LowLatencyState());
  const int firstRank = shape.domainOf(comm.rank) * shape.domainSize();
  if (Status s = PeerBuffer::create(comm.control->get(), comm.rank, comm.ranks, firstRank, shape.domainSize(),
                                    static_cast<size_t>(regions.total), comm.config.timeoutMs, &state->buffer_);
      !s.isOk())
    return s;
  if (Status s = allocateDevice(scratch.total, &state->scratch_, "cudaMalloc(low-latency scratch)"); !s.isOk())
    return s;
  if (readParam(params::kLowLatencyTrace) == 1) {
    if (Status s = allocateDevice(1, &state->trace_, "cudaMalloc(low-latency trace)"); !s.isOk()) return s;
    if (Status s = cudaStatus(cudaMemset(state->trace_.get(), 0, sizeof(LowLatencyTrace)), "cudaMemset(trace)");
        !s.isOk())
      return s;
  }
  // Zero counters and scratch before any LL kernel (on the caller's streams, which do not wait for
  // the legacy stream) can run.
  if (Status s = cudaStatus(cudaMemset(state->scratch_.get(), 0, scratch.total), "cudaMemset(low-latency scratch)");
      !s.isOk())
    return s;
  if (Status s = cudaStatus(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); !s.isOk()) return s;
  state->scratchBytes_ = scratch.total;

  LowLatencyView& v = state->view_;
  v.domain = comm.view;
  v.buffers = state->buffer_->devicePeerTable();
  v.regions = regions;
  uint8_t* at = state->scratch_.get();
  v.counters = reinterpret_cast<LowLatencyCounters*>(at);
  v.stashKept = reinterpret_cast<int32_t*>(at += scratch.counters);
  v.stashWeights = reinterpret_cast<float*>(at += scratch.stashKept);
  v.netTails = twoHop ? (at += scratch.stashWeights) : nullptr;
  v.netTailBytes = twoHop ? lowLatencyNetTailBytes(shape) : 0;
  v.trace = state->trace_.get();
  v.ranks = shape.ranks;
  v.rank = comm.rank;
  v.experts = shape.experts;
  v.localExperts = shape.localExperts();
  v.hidden = shape.hidden;
  v.maxTokens = shape.maxTokens;
  v.maxTopk = shape.maxTopk;
  v.scaleBlocks = shape.scaleBlocks();
  v.fp8 = shape.fp8;
  v.powerOfTwoScales = shape.powerOfTwoScales;
  v.segmentRows = shape.segmentRows();
  v.scalePlaneRows = shape.scalePlaneRows();

  if (twoHop) {
    state->rail_ = comm.rail.get();
    state->jobs_ = lowLatencyNetJobs(state->buffer_->local(), v.netTails, shape, comm.rank);
    for (CudaEvent* event : {&state->dispatchLanded_[0], &state->dispatchLanded_[1], &state->weightsLanded_[0],
                             &state->weightsLanded_[1], &state->partialsLanded_})
      if (Status s = event->create(); !s.isOk()) return s;
    // Every kind of group once while all ranks are here (NCCL connects now, not inside a call or a
    // capture). What lands is never read: every tail holds sequence number 0.
    for (const auto& kind : state->jobs_)
      if (Status s = state->rail_->rehearse(kind[0]); !s.isOk()) return s;
  }
  logInfo("rank %d: low-latency mode: up to %d tokens per call, %s dispatch, %s, LL buffers %.1f MiB (two parities), "
          "scratch %.2f MiB",
          comm.rank, shape.maxTokens, !shape.fp8 ? "BF16" : shape.powerOfTwoScales ? "FP8 (power-of-two scales)" : "FP8",
          twoHop ? format("two hops over %d domains of %d ranks", shape.domains(), shape.domainSize()).c_str()
                 : "one NVLink domain",
          regions.total / 1048576.0, scratch.total / 1048576.0);
  *out = std::move(state);
  return Status::ok();
}

LowLatencyView LowLatencyState::viewWith(int parity) const {
  LowLatencyView v = view_;
  v.netParity = parity;
  return v;
}

Status LowLatencyState::issueNetwork(int kind, int parity, cudaEvent_t landed, cudaStream_t stream) {
  if (Status s = rail_->forkFrom(stream); !s.isOk()) return s;
  if (Status s = rail_->issue(jobs_[kind][parity], rail_->stream()); !s.isOk()) return s;
  return cudaStatus(cudaEventRecord(landed, rail_->stream()), "cudaEventRecord(low-latency network landed)");
}

// Send: the send kernel (NVLink writes and the network slots), then the slots' group. Receive (after
// that group landed): the relay's fan-out and the placement, one kernel.
Status LowLatencyState::dispatchTwoHop(const ncclMoeLowLatencyDispatchArgs_t& args, LowLatencyHalves halves,
                                       int outstanding, int maxBlocks, cudaStream_t stream) {
  constexpr const char* kCall = "low-latency dispatch (two hops)";
  const int parity = networkParity(dispatchSends_, outstanding, halves);
  if (halves & kLowLatencySend) {
    const cudaError_t launched = launchLowLatencyDispatch(viewWith(parity), args, kLowLatencySend, maxBlocks, stream);
    if (Status s = cudaStatus(launched, kCall); !s.isOk()) return s;
    if (Status s = issueNetwork(kLowLatencyNetDispatch, parity, dispatchLanded_[parity].get(), stream); !s.isOk())
      return s;
    ++dispatchSends_;
  }
  if (!(halves & kLowLatencyReceive)) return Status::ok();
  if (Status s = cudaStatus(cudaStreamWaitEvent(stream, dispatchLanded_[parity].get(), 0), "cudaStreamWaitEvent");
      !s.isOk())
    return s;
  return cudaStatus(launchLowLatencyDispatch(viewWith(parity), args, kLowLatencyReceive, maxBlocks, stream), kCall);
}

// Send: the send kernel (rows over NVLink, own slots stashed, weights staged), then the weights'
// group. Receive (after it landed): the relay's node partials, their group, then the sum.
Status LowLatencyState::combineTwoHop(const ncclMoeLowLatencyCombineArgs_t& args, LowLatencyHalves halves,
                                      int outstanding, int maxBlocks, cudaStream_t stream) {
  constexpr const char* kCall = "low-latency combine (two hops)";
  const int parity = networkParity(combineSends_, outstanding, halves);
  if (halves & kLowLatencySend) {
    const cudaError_t launched = launchLowLatencyCombine(viewWith(parity), args, kLowLatencySend, maxBlocks, stream);
    if (Status s = cudaStatus(launched, kCall); !s.isOk()) return s;
    if (Status s = issueNetwork(kLowLatencyNetWeights, parity, weightsLanded_[parity].get(), stream); !s.isOk())
      return s;
    ++combineSends_;
  }
  if (!(halves & kLowLatencyReceive)) return Status::ok();
  const LowLatencyView v = viewWith(parity);
  if (Status s = cudaStatus(cudaStreamWaitEvent(stream, weightsLanded_[parity].get(), 0), "cudaStreamWaitEvent");
      !s.isOk())
    return s;
  if (Status s = cudaStatus(launchLowLatencyCombineRelay(v, args, maxBlocks, stream), kCall); !s.isOk()) return s;
  if (Status s = issueNetwork(kLowLatencyNetPartials, parity, partialsLanded_.get(), stream); !s.isOk()) return s;
  if (Status s = cudaStatus(cudaStreamWaitEvent(stream, partialsLanded_.get(), 0), "cudaStreamWaitEvent"); !s.isOk())
    return s;
  return cudaStatus(launchLowLatencyCombine(v, args, kLowLatencyReceive, maxBlocks, stream), kCall);
}

Status runLowLatencyDispatch(ncclMoeComm* comm, const ncclMoeLowLatencyDispatchArgs_t* args, LowLatencyHalves halves,
                             const char* call, cudaStream_t stream) {
  if (Status s = checkLowLatencyAvailable(comm->config, call); !s.isOk()) return s;
  LowLatencyState& ll = *comm->lowLatency;
  const int sms = comm->config.dispatchSms;
  return runHalves(comm, args, halves, ll.dispatches, checkLowLatencyDispatchArgs,
                   [&](const ncclMoeLowLatencyDispatchArgs_t& given, int outstanding) {
                     if (ll.twoHop()) return ll.dispatchTwoHop(given, halves, outstanding, sms, stream);
                     return cudaStatus(launchLowLatencyDispatch(ll.view(), given, halves, sms, stream), call);
                   });
}

Status runLowLatencyCombine(ncclMoeComm* comm, const ncclMoeLowLatencyCombineArgs_t* args, LowLatencyHalves halves,
                            const char* call, cudaStream_t stream) {
  if (Status s = checkLowLatencyAvailable(comm->config, call); !s.isOk()) return s;
  LowLatencyState& ll = *comm->lowLatency;
  const int sms = comm->config.combineSms;
  return runHalves(comm, args, halves, ll.combines, checkLowLatencyCombineArgs,
                   [&](const ncclMoeLowLatencyCombineArgs_t& given, int outstanding) {
                     if (ll.twoHop()) return ll.combineTwoHop(given, halves, outstanding, sms, stream);
                     return cudaStatus(launchLowLatencyCombine(ll.view(), given, halves, sms, stream), call);
                   });
}

}  // namespace nccl_moe
