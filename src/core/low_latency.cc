#include "core/low_latency.h"

#include <cstdint>

#include "core/comm.h"
#include "misc/log.h"

namespace nccl_moe {

namespace {

size_t aligned256(size_t bytes) { return (bytes + 255) / 256 * 256; }

// The shared shape of both LL calls (the mode already known to be available): check what this half needs (arguments, or an outstanding send
// half to complete), launch, then record the send half or retire the oldest one.
template <class Args, class CheckArgs, class Launch>
Status runHalves(ncclMoeComm* comm, const Args* args, LowLatencyHalves halves, const char* call,
                 OutstandingHalves<Args>& outstanding, CheckArgs checkArgs, Launch launch) {
  const bool sends = (halves & kLowLatencySend) != 0;
  if (sends) {
    if (Status s = checkArgs(comm->config, comm->rank, args); !s.isOk()) return s;
    if (Status s = halves == kLowLatencyBoth ? outstanding.checkFused() : outstanding.checkSend(); !s.isOk()) return s;
  } else if (Status s = outstanding.checkReceive(); !s.isOk()) {
    return s;
  }
  const Args& given = sends ? *args : outstanding.oldest();
  if (Status s = cudaStatus(launch(given), call); !s.isOk()) return s;
  if (halves == kLowLatencySend) outstanding.push(given);
  if (halves == kLowLatencyReceive) outstanding.pop();
  return Status::ok();
}

}  // namespace

LowLatencyShape lowLatencyShapeOf(const CommConfig& config, int ranks) {
  LowLatencyShape shape;
  shape.ranks = ranks;
  shape.ranksPerDomain = ranks;
  shape.experts = config.shape.experts;
  shape.hidden = config.shape.hidden;
  shape.maxTopk = config.shape.maxTopk;
  shape.maxTokens = config.lowLatencyMaxTokens;
  shape.fp8 = config.lowLatencyFp8 != 0;
  shape.powerOfTwoScales = config.lowLatencyFp8 == 2;
  return shape;
}

LowLatencyScratch lowLatencyScratchOf(const LowLatencyShape& shape) {
  const size_t R = shape.ranks, N = shape.maxTokens, K = shape.maxTopk, L = shape.localExperts();
  LowLatencyScratch s;
  s.counters = aligned256(sizeof(LowLatencyCounters));
  s.positions = aligned256(R * N * K * sizeof(int32_t));
  s.sourceCounts = aligned256(R * L * sizeof(int32_t));
  s.stashKept = aligned256(2 * N * K * sizeof(int32_t));
  s.stashWeights = aligned256(2 * N * K * sizeof(float));
  s.total = s.counters + s.positions + s.sourceCounts + s.stashKept + s.stashWeights;
  return s;
}

Status LowLatencyState::create(const ncclMoeComm& comm, std::unique_ptr<LowLatencyState>* out) {
  const LowLatencyShape shape = lowLatencyShapeOf(comm.config, comm.ranks);
  if (Status s = checkLowLatencyShape(shape); !s.isOk()) return s;
  const LowLatencyRegions regions = lowLatencyRegionsOf(shape);
  const LowLatencyScratch scratch = lowLatencyScratchOf(shape);
  std::unique_ptr<LowLatencyState> state(new LowLatencyState());
  if (Status s = PeerBuffer::create(comm.control->get(), comm.rank, comm.ranks, 0, comm.ranks,
                                    static_cast<size_t>(regions.total), comm.config.timeoutMs, &state->buffer_);
      !s.isOk())
    return s;
  if (Status s = allocateDevice(scratch.total, &state->scratch_, "cudaMalloc(low-latency scratch)"); !s.isOk())
    return s;
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
  v.positions = reinterpret_cast<int32_t*>(at += scratch.counters);
  v.sourceCounts = reinterpret_cast<int32_t*>(at += scratch.positions);
  v.stashKept = reinterpret_cast<int32_t*>(at += scratch.sourceCounts);
  v.stashWeights = reinterpret_cast<float*>(at += scratch.stashKept);
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
  logInfo("rank %d: low-latency mode: up to %d tokens per call, %s dispatch, LL buffers %.1f MiB (two parities), "
          "scratch %.2f MiB",
          comm.rank, shape.maxTokens, !shape.fp8 ? "BF16" : shape.powerOfTwoScales ? "FP8 (power-of-two scales)" : "FP8",
          regions.total / 1048576.0, scratch.total / 1048576.0);
  *out = std::move(state);
  return Status::ok();
}

Status runLowLatencyDispatch(ncclMoeComm* comm, const ncclMoeLowLatencyDispatchArgs_t* args, LowLatencyHalves halves,
                             const char* call, cudaStream_t stream) {
  if (Status s = checkLowLatencyAvailable(comm->config, comm->domains, call); !s.isOk()) return s;
  LowLatencyState& ll = *comm->lowLatency;
  return runHalves(comm, args, halves, call, ll.dispatches, checkLowLatencyDispatchArgs,
                   [&](const ncclMoeLowLatencyDispatchArgs_t& given) {
                     return launchLowLatencyDispatch(ll.view(), given, halves, comm->config.dispatchSms, stream);
                   });
}

Status runLowLatencyCombine(ncclMoeComm* comm, const ncclMoeLowLatencyCombineArgs_t* args, LowLatencyHalves halves,
                            const char* call, cudaStream_t stream) {
  if (Status s = checkLowLatencyAvailable(comm->config, comm->domains, call); !s.isOk()) return s;
  LowLatencyState& ll = *comm->lowLatency;
  return runHalves(comm, args, halves, call, ll.combines, checkLowLatencyCombineArgs,
                   [&](const ncclMoeLowLatencyCombineArgs_t& given) {
                     return launchLowLatencyCombine(ll.view(), given, halves, comm->config.combineSms, stream);
                   });
}

}  // namespace nccl_moe
