#include "transport/rail_exchange.h"

#include <algorithm>
#include <atomic>
#include <optional>

#include "misc/host_wait.h"
#include "misc/log.h"
#include "misc/nccl_status.h"
#include "transport/network_sync.h"

namespace nccl_moe {

namespace {

int64_t steadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// `status`: the group's status words (transport/network_sync.h): [0] goes to every rail peer this
// rank sends rows to, after them; the word of the peer in domain n lands in [1 + n] after its rows.
Status issueGroup(ncclComm_t rail, const RailJob& job, uint64_t* status, cudaStream_t stream) {
  // A chunk fitted to counts may carry nothing either way (every transfer of this rank empty; its
  // rail peers then have nothing for it either): no NCCL call at all.
  bool empty = true;
  for (const RailLeg& leg : job.legs) empty = empty && leg.sendRows == 0 && leg.recvRows == 0 && leg.tailBytes == 0;
  if (empty) return Status::ok();
  if (Status s = ncclStatus(ncclGroupStart(), "ncclGroupStart"); !s.isOk()) return s;
  Status result;
  for (const RailLeg& leg : job.legs) {
    const size_t sendBytes = static_cast<size_t>(leg.sendRows) * leg.rowBytes;
    const size_t recvBytes = static_cast<size_t>(leg.recvRows) * leg.rowBytes;
    // Two sends to one peer in a group arrive in order: rows, then the status word or the tail
    // (and the same on the receiving side).
    if (result.isOk() && sendBytes > 0) {
      result = ncclStatus(ncclSend(leg.send, sendBytes, ncclUint8, leg.peer, rail, stream), "ncclSend");
      if (result.isOk() && !job.bare)
        result = ncclStatus(ncclSend(status, 1, ncclUint64, leg.peer, rail, stream), "ncclSend(status)");
    }
    if (result.isOk() && job.bare && leg.tailBytes > 0)
      result = ncclStatus(ncclSend(leg.sendTail, leg.tailBytes, ncclUint8, leg.peer, rail, stream), "ncclSend(tail)");
    if (result.isOk() && recvBytes > 0) {
      result = ncclStatus(ncclRecv(leg.recv, recvBytes, ncclUint8, leg.peer, rail, stream), "ncclRecv");
      if (result.isOk() && !job.bare)
        result = ncclStatus(ncclRecv(status + 1 + leg.peer, 1, ncclUint64, leg.peer, rail, stream), "ncclRecv(status)");
    }
    if (result.isOk() && job.bare && leg.tailBytes > 0)
      result = ncclStatus(ncclRecv(leg.recvTail, leg.tailBytes, ncclUint8, leg.peer, rail, stream), "ncclRecv(tail)");
  }
  const Status ended = ncclStatus(ncclGroupEnd(), "ncclGroupEnd");
  return result.isOk() ? ended : result;
}

}  // namespace

Status RailExchange::create(ncclComm_t parent, int device, const DomainView& view, int timeoutMs, int maxCtas,
                            std::unique_ptr<RailExchange>* out) {
  std::unique_ptr<RailExchange> exchange(new RailExchange());
  exchange->device_ = device;
  exchange->view_ = view;
  exchange->timeout_ = std::chrono::milliseconds(timeoutMs);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.minCTAs = 1;
  config.maxCTAs = std::max(1, maxCtas);
  if (Status s = ncclStatus(ncclCommSplit(parent, view.localRank, view.domain, &exchange->rail_, &config),
                            "ncclCommSplit(rail)");
      !s.isOk())
    return s;
  if (Status s = exchange->stream_.create(); !s.isOk()) return s;
  if (Status s = cudaStatus(preloadNetworkKernels(), "cudaFuncGetAttributes(network kernels)"); !s.isOk()) return s;
  if (Status s = exchange->fork_.create(); !s.isOk()) return s;
  for (CudaEvent& landed : exchange->landed_)
    if (Status s = landed.create(); !s.isOk()) return s;
  for (Watch& slot : exchange->slots_) {
    if (Status s = slot.started.create(); !s.isOk()) return s;
    if (Status s = slot.finished.create(); !s.isOk()) return s;
    if (Status s = allocateDevice(1, &slot.epoch, "cudaMalloc(job epoch)"); !s.isOk()) return s;
    if (Status s = allocateDevice(1 + view.domains, &slot.status, "cudaMalloc(job status)"); !s.isOk()) return s;
  }
  RailExchange* raw = exchange.get();
  exchange->watchdog_ = std::thread([raw] { raw->watch(); });
  *out = std::move(exchange);
  return Status::ok();
}

RailExchange::~RailExchange() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  if (rail_ == nullptr) return;
  // The watchdog is gone: a group a rail peer never joins would block a plain synchronise (and
  // ncclCommFinalize) forever. Past the timeout the rail communicator is aborted instead.
  if (waitStream(stream_.get(), static_cast<int>(timeout_.count()), "the rail exchange's last network group").isOk()) {
    ncclCommFinalize(rail_);
    ncclCommDestroy(rail_);
  } else {
    ncclCommAbort(rail_);
  }
}

void RailExchange::abortLocked() {
  if (!aborted_ && rail_ != nullptr) ncclCommAbort(rail_);
  rail_ = nullptr;
  aborted_ = true;
  stopping_ = true;
}

void RailExchange::abort() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    abortLocked();
  }
  changed_.notify_all();
}

Status RailExchange::rehearse(const RailJob& job) {
  std::lock_guard<std::mutex> lock(mutex_);
  // (No prologue: the status words it moves are never read.)
  if (Status s = issueGroup(rail_, job, slots_.front().status.get(), stream_.get()); !s.isOk()) return s;
  return waitStream(stream_.get(), static_cast<int>(timeout_.count()), "the network rehearsal over the rail communicator");
}

Status RailExchange::issue(const RailJob& job, cudaStream_t stream) {
  std::unique_lock<std::mutex> lock(mutex_);
  const int index = nextSlot_;
  // A slot is free once the watchdog saw its group finish (or gave up on it).
  changed_.wait(lock, [&] { return !slots_[index].busy || aborted_; });
  if (aborted_)
    return {ncclRemoteError, "the network phase of this communicator was aborted after a failure; destroy it"};
  nextSlot_ = (index + 1) % kWatchSlots;
  Watch& slot = slots_[index];
  // Captured: the events would be nodes of the graph, which the watchdog cannot follow from one
  // replay to the next; host nodes arm and disarm a watch at every replay instead.
  GraphWatch* graphWatch = streamIsCapturing(stream) ? newGraphWatch(job) : nullptr;
  if (graphWatch != nullptr)
    if (Status s = cudaStatus(cudaLaunchHostFunc(stream, armGraphWatch, graphWatch), "cudaLaunchHostFunc(arm)");
        !s.isOk())
      return s;
  if (!job.bare)
    if (Status s = cudaStatus(launchNetworkPrologue(view_, slot.epoch.get(), slot.status.get(), stream),
                              "launch(network prologue)");
        !s.isOk())
      return s;
  if (Status s = cudaStatus(cudaEventRecord(slot.started.get(), stream), "cudaEventRecord"); !s.isOk()) return s;
  if (Status s = issueGroup(rail_, job, slot.status.get(), stream); !s.isOk()) return s;
  logMessage(LogLevel::kTrace, "rank %d: network group '%s' enqueued", view_.rank, job.what);
  if (Status s = cudaStatus(cudaEventRecord(slot.finished.get(), stream), "cudaEventRecord"); !s.isOk()) return s;
  if (graphWatch != nullptr)
    if (Status s = cudaStatus(cudaLaunchHostFunc(stream, disarmGraphWatch, graphWatch), "cudaLaunchHostFunc(disarm)");
        !s.isOk())
      return s;
  if (!job.bare)
    if (Status s = cudaStatus(launchNetworkSignal(view_, job.phase, job.selfOnly, job.chunk, slot.epoch.get(),
                                                  slot.status.get(), stream),
                              "launch(network signal)");
        !s.isOk())
      return s;
  slot.busy = graphWatch == nullptr;
  slot.startSeen = false;
  slot.info = infoOf(job, view_);
  lock.unlock();
  changed_.notify_all();
  return Status::ok();
}

RailExchange::JobInfo RailExchange::infoOf(const RailJob& job, const DomainView& view) {
  JobInfo info;
  info.what = job.what;
  info.phase = job.phase;
  info.chunk = job.chunk;
  info.chunks = job.chunks;
  info.firstPeer = job.legs.empty() ? -1 : job.legs.front().peer * view.localRanks + view.localRank;
  return info;
}

RailExchange::GraphWatch* RailExchange::newGraphWatch(const RailJob& job) {
  GraphWatch& watch = graphWatches_.emplace_back();
  watch.owner = this;
  watch.info = infoOf(job, view_);
  return &watch;
}

// Host nodes of a captured group (a CUDA driver thread runs them at each replay): no CUDA call,
// no lock; the watchdog polls while graph watches exist, so a notification is not needed.
void CUDART_CB RailExchange::armGraphWatch(void* watch) {
  static_cast<GraphWatch*>(watch)->armedSinceNs.store(std::max<int64_t>(1, steadyNowNs()), std::memory_order_release);
}

void CUDART_CB RailExchange::disarmGraphWatch(void* watch) {
  static_cast<GraphWatch*>(watch)->armedSinceNs.store(0, std::memory_order_release);
}

// A replayed group armed longer than the timeout: reports it (the caller aborts).
bool RailExchange::graphWatchExpired(int64_t nowNs) {
  const int64_t limitNs = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout_).count();
  for (const GraphWatch& watch : graphWatches_) {
    const int64_t since = watch.armedSinceNs.load(std::memory_order_acquire);
    if (since != 0 && nowNs - since > limitNs) {
      reportTimeout(watch.info);
      return true;
    }
  }
  return false;
}

bool RailExchange::graphWatchArmed() const {
  for (const GraphWatch& watch : graphWatches_)
    if (watch.armedSinceNs.load(std::memory_order_acquire) != 0) return true;
  return false;
}

bool RailExchange::failedHere() const {
  return view_.errorHost != nullptr &&
         *reinterpret_cast<const volatile int32_t*>(&view_.errorHost->kind) != kErrorNone;
}

Status RailExchange::forkFrom(cudaStream_t stream) {
  if (Status s = cudaStatus(cudaEventRecord(fork_.get(), stream), "cudaEventRecord(fork)"); !s.isOk()) return s;
  return cudaStatus(cudaStreamWaitEvent(stream_.get(), fork_.get(), 0), "cudaStreamWaitEvent(fork)");
}

void RailExchange::retarget(const DomainView& view) {
  std::lock_guard<std::mutex> lock(mutex_);
  view_ = view;
}

Status RailExchange::issueForked(const RailJob& job) {
  if (Status s = issue(job, stream_.get()); !s.isOk()) return s;
  return cudaStatus(cudaEventRecord(landed_[std::max(job.chunk, 0)].get(), stream_.get()), "cudaEventRecord(landed)");
}

Status RailExchange::joinInto(cudaStream_t stream, int chunk) {
  return cudaStatus(cudaStreamWaitEvent(stream, landed_[std::max(chunk, 0)].get(), 0), "cudaStreamWaitEvent(landed)");
}

void RailExchange::reportTimeout(const JobInfo& info) {
  ErrorRecord record{};
  record.kind = kErrorNetworkTimeout;
  record.rank = view_.rank;
  record.peer = info.firstPeer;
  record.phase = info.phase;
  record.expected = static_cast<uint64_t>(timeout_.count());
  record.slot = info.chunk;
  const std::string which = info.chunk < 0 ? "" : format(", chunk %d of %d", info.chunk + 1, info.chunks);
  logWarn("rank %d: the network phase (%s%s) with rail peer %d did not complete within %lld ms: aborting it",
          view_.rank, info.what, which.c_str(), info.firstPeer, static_cast<long long>(timeout_.count()));
  // The host mirror keeps the first failure of this rank (a kernel's may be there already).
  volatile ErrorRecord* host = view_.errorHost;
  if (host->kind == kErrorNone) {
    host->rank = record.rank;
    host->peer = record.peer;
    host->phase = record.phase;
    host->expected = record.expected;
    host->observed = 0;
    host->slot = record.slot;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    host->kind = record.kind;
  }
  // No CUDA call here: on an H100 a copy enqueued now did not run while the group hung. The signal
  // kernel behind the aborted group reads this host record and signals nothing; the kernels
  // waiting for that signal then time out on their own.
}

void RailExchange::watch() {
  cudaSetDevice(device_);
  // This thread only queries events it owns: a CUDA graph capture on the caller's thread must not
  // forbid (or be invalidated by) them.
  cudaStreamCaptureMode relaxed = cudaStreamCaptureModeRelaxed;
  cudaThreadExchangeStreamCaptureMode(&relaxed);
  // Once a kernel of this rank has failed (a domain peer timed out, say), a network group still
  // pending would wait the whole timeout again for a rail peer that may have given up already: it
  // gets a short grace (time for a live rail peer to receive this rank's failed status word) and
  // is then aborted, so the first detection ends the call on this rank within about timeoutMs.
  const auto failureGrace = std::min<std::chrono::milliseconds>(timeout_ / 4, std::chrono::milliseconds(250));
  std::optional<std::chrono::steady_clock::time_point> failureSeenAt;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    // Captured groups are armed by host nodes at replay, without waking this thread: they are
    // polled, every millisecond at most (a timeout is far coarser than that).
    if (!graphWatches_.empty() && graphWatchExpired(steadyNowNs())) {
      abortLocked();
      changed_.notify_all();
      return;
    }
    const bool pending = graphWatchArmed() ||
                         std::any_of(slots_.begin(), slots_.end(), [](const Watch& slot) { return slot.busy; });
    if (pending && failedHere()) {
      const auto now = std::chrono::steady_clock::now();
      if (!failureSeenAt) failureSeenAt = now;
      if (now - *failureSeenAt > failureGrace) {
        logWarn("rank %d: this rank already failed (error record kind %d); aborting its pending network phase",
                view_.rank, static_cast<int>(view_.errorHost->kind));
        abortLocked();
        changed_.notify_all();
        return;
      }
    }
    bool watching = false;
    for (Watch& slot : slots_) {
      if (!slot.busy) continue;
      watching = true;
      const auto now = std::chrono::steady_clock::now();
      if (!slot.startSeen) {
        if (cudaEventQuery(slot.started.get()) == cudaErrorNotReady) continue;
        slot.startSeen = true;
        slot.startedAt = now;
      }
      if (cudaEventQuery(slot.finished.get()) != cudaErrorNotReady) {
        slot.busy = false;
        changed_.notify_all();
      } else if (now - slot.startedAt > timeout_) {
        reportTimeout(slot.info);
        logMessage(LogLevel::kTrace, "rank %d: aborting the rail communicator", view_.rank);
        abortLocked();
        logMessage(LogLevel::kTrace, "rank %d: rail communicator aborted", view_.rank);
        changed_.notify_all();
        return;
      }
    }
    if (watching) {
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      lock.lock();
    } else if (!graphWatches_.empty()) {
      changed_.wait_for(lock, std::chrono::milliseconds(1));
    } else {
      changed_.wait(lock);
    }
  }
}

}  // namespace nccl_moe
