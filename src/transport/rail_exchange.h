// The network phase of the two-hop (HybridEP) path: NCCL point-to-point between rail peers (the
// ranks with the same local index in every domain), on a communicator split from the EP one.
//
// Progress design. A job (the routing meta in the layout, one chunk of the packed rows in dispatch
// or of the domain partials in combine) is enqueued by the calling thread between the kernels that
// produce and consume it: a prologue kernel stores the call's epoch, one NCCL group moves the job's
// rows (slots of maxTokensPerRank rows split into chunks of fixed rows, at full size unless the
// host knows the layout's row counts: core/network_jobs.h fitToCounts; without them there is no
// host synchronisation and CUDA graphs capture the whole call), and a signal kernel stores the
// epoch (or chunkSignal(epoch, chunk))
// into the signal slots that the consumer kernels wait on. Chunks run on the exchange's own stream
// (forkFrom / issueForked / joinInto) so that the caller's stream runs NVLink work beside them.
// NCCL waits have no timeout of their own, so a watchdog thread follows every group through two
// events: a group still running `timeout` after it started (a rail peer died) records a timeout
// error naming the phase, the chunk and the rail peer in the host-mapped error record, and aborts
// the rail communicator, whose kernels then return. The signal kernel behind them sees the record
// and signals nothing, so the kernels waiting for it time out too and the call ends with the error.
// A rank whose kernels failed still sends (its group is stream-ordered after them, and its rail
// peers wait for it), so each sender also sends a status word after its rows: a receiver whose
// rail peer had failed records that and does not signal, rather than hand half-written rows on.
// A group enqueued while the stream is captured into a CUDA graph runs at every replay, long after
// this call returned: instead of events (graph nodes the watchdog cannot tell apart between
// replays) it is framed by two host nodes that stamp and clear an "armed since" time at each
// replay; the watchdog treats an armed group like a running one.
//
// Measured on an H100 (NCCL 2.28.3, with and without MPS): NCCL's kernels on a second stream did not
// make progress while a kernel of the same process spun waiting for them, so a design that issues
// the transfers from a helper thread while the caller's kernels wait for them hung. Here no kernel
// of this process waits for a group of this process unless it is stream-ordered after it: every
// chunk of a call is enqueued before the kernels beside it, those kernels wait only for domain
// peers (their staging, or chunks that already landed at the peers), and a chunk never waits for
// any of them.
#pragma once

#include <nccl.h>

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "misc/cuda_memory.h"
#include "misc/status.h"
#include "transport/domain_view.h"

namespace nccl_moe {

// One rail peer's part of a job: `rows` rows of rowBytes each way (the whole slot, or chunk of
// it), of which sendRows go out and recvRows come in (fewer when the host knows the row counts:
// fitToCounts in core/network_jobs.h).
struct RailLeg {
  int peer = 0;  // rank in the rail communicator (= domain index)
  const void* send = nullptr;
  void* recv = nullptr;
  int64_t rows = 0;
  int64_t sendRows = 0;
  int64_t recvRows = 0;
  size_t rowBytes = 0;
  // Bare jobs only (below): a small record sent after the rows and received after the peer's, in
  // place of the status word (the low-latency path's sequence numbers, token counts and faults).
  const void* sendTail = nullptr;
  void* recvTail = nullptr;
  size_t tailBytes = 0;
};

struct RailJob {
  const char* what = "";  // for messages: "layout meta", "dispatch rows", "combine partials"
  int phase = 0;          // signalled when the transfers have landed
  bool selfOnly = false;  // signal this rank only (else every domain peer)
  int chunk = -1;         // chunk of a chunked phase (signals chunkSignal(epoch, chunk)); -1: whole
  int chunks = 0;         // chunks of the phase (messages)
  // No prologue, status words or signal kernel around the group: the kernels behind it are
  // stream-ordered after it and check what landed themselves (each leg's tail carries the sender's
  // sequence number: a stale one means the sender had failed). The low-latency path's jobs.
  bool bare = false;
  std::vector<RailLeg> legs;
};

class RailExchange {
 public:
  // Collective over `parent`: splits the rail communicator (color = local index, key = domain),
  // whose kernels use at most maxCtas CTAs (the network's share of the SM budget).
  // `view.errorHost` receives the watchdog's timeout record.
  static Status create(ncclComm_t parent, int device, const DomainView& view, int timeoutMs, int maxCtas,
                       std::unique_ptr<RailExchange>* out);
  ~RailExchange();
  RailExchange(const RailExchange&) = delete;
  RailExchange& operator=(const RailExchange&) = delete;

  // Runs `job` on the exchange's own stream and waits (set-up only: NCCL connects now).
  Status rehearse(const RailJob& job);
  // Enqueues `job` on `stream` (prologue, NCCL group, signal; the group alone for a bare job) and
  // hands it to the watchdog.
  Status issue(const RailJob& job, cudaStream_t stream);
  // Chunked phases run on the exchange's own stream so that `stream` can run NVLink work beside
  // them: forkFrom orders that stream after the work enqueued on `stream` so far, issueForked
  // enqueues a job there (its end is recorded as "landed" for the job's chunk), joinInto orders
  // `stream` after chunk `chunk` has landed. The work beside the jobs must not wait for anything
  // they deliver except through joinInto.
  Status forkFrom(cudaStream_t stream);
  Status issueForked(const RailJob& job);
  Status joinInto(cudaStream_t stream, int chunk);
  // After the communicator's buffer was replaced (ncclMoeCommResize): the view the prologue and
  // signal kernels address from now on. No group may be in flight.
  void retarget(const DomainView& view);
  // The exchange's own stream (for events that time the network phase).
  cudaStream_t stream() const { return stream_.get(); }
  // After a failure elsewhere: abort the rail communicator (its kernels may wait for a rank that
  // will never answer) and stop the watchdog. Idempotent.
  void abort();

 private:
  // Enough for the layout and every chunk of a dispatch and a combine in flight at once, and the
  // low-latency groups besides (two dispatches and two combines outstanding, one combine's partials).
  static constexpr int kWatchSlots = 2 * kMaxNetworkChunks + 4 + 5;
  // What a timeout message names about a group.
  struct JobInfo {
    const char* what = "";
    int phase = 0;
    int chunk = -1;
    int chunks = 0;
    int firstPeer = -1;  // global rank of the job's first rail peer
  };
  // A group enqueued outside capture: followed through its two events.
  struct Watch {
    CudaEvent started;
    CudaEvent finished;
    DeviceMemory<uint64_t> epoch;
    DeviceMemory<uint64_t> status;  // the group's status words (transport/network_sync.h)
    bool busy = false;
    bool startSeen = false;
    std::chrono::steady_clock::time_point startedAt;
    JobInfo info;
  };
  // A group captured into a graph: host nodes before and after it stamp and clear armedSinceNs at
  // each replay (no CUDA call in them). Kept until the exchange dies: the graph may replay any time.
  struct GraphWatch {
    RailExchange* owner = nullptr;
    JobInfo info;
    std::atomic<int64_t> armedSinceNs{0};
  };

  RailExchange() = default;
  static JobInfo infoOf(const RailJob& job, const DomainView& view);
  static void CUDART_CB armGraphWatch(void* watch);
  static void CUDART_CB disarmGraphWatch(void* watch);
  // A GraphWatch for `job`, kept for the exchange's life (called with mutex_ held).
  GraphWatch* newGraphWatch(const RailJob& job);
  void watch();
  bool graphWatchExpired(int64_t nowNs);
  bool graphWatchArmed() const;
  // A kernel of this rank already recorded a failure (view_.errorHost).
  bool failedHere() const;
  void reportTimeout(const JobInfo& info);
  void abortLocked();

  ncclComm_t rail_ = nullptr;
  int device_ = 0;
  DomainView view_;
  std::chrono::milliseconds timeout_{0};
  CudaStream stream_;
  CudaEvent fork_;  // forkFrom / joinInto (recorded and waited in call order by one thread)
  std::array<CudaEvent, kMaxNetworkChunks> landed_;
  std::array<Watch, kWatchSlots> slots_;
  int nextSlot_ = 0;
  std::deque<GraphWatch> graphWatches_;  // stable addresses: the graphs' host nodes point at them

  std::mutex mutex_;  // slots, the rail communicator's calls and its abort
  std::condition_variable changed_;
  bool stopping_ = false;
  bool aborted_ = false;
  std::thread watchdog_;
};

}  // namespace nccl_moe
