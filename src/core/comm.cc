#include "core/comm.h"

#include <algorithm>
#include <cmath>
#include <atomic>
#include <cstdlib>
#include <cstdio>
#include <cstddef>
#include <cstring>

#include "misc/env.h"
#include "misc/host_wait.h"
#include "misc/numerics.h"
#include "misc/log.h"
#include "plan/plan_choice.h"
#include "plan/routing.h"
#include "transport/low_latency_protocol.h"
#include "transport/protocol.h"
#include "core/network_jobs.h"
#include "core/two_hop.h"
#include "misc/comm_registry.h"
#include "misc/nccl_status.h"

namespace nccl_moe {

namespace {

// Unique in the process: a handle remembers its communicator's id, so a handle of a communicator
// destroyed (or resized) since is refused even when the address is the same.
uint64_t nextCommId() {
  static std::atomic<uint64_t> next{1};
  return next++;
}

// Ranks that share one GPU (the one-GPU virtual cluster) spin-wait on each other inside kernels, so
// all of their blocks must be resident at once: split the GPU's SMs between them (leaving a few
// to NCCL's kernels when the network phase runs beside them).
Status capSmsOnSharedDevice(ncclMoeComm* comm) {
  char busId[32] = {};
  if (Status s = cudaStatus(cudaDeviceGetPCIBusId(busId, sizeof(busId), comm->device), "cudaDeviceGetPCIBusId"); !s.isOk())
    return s;
  std::vector<uint8_t> all;
  if (Status s = comm->control->allGather(busId, sizeof(busId), &all); !s.isOk()) return s;
  int sharing = 0;
  for (int r = 0; r < comm->ranks; ++r) sharing += std::memcmp(all.data() + r * sizeof(busId), busId, sizeof(busId)) == 0;
  if (sharing <= 1) return Status::ok();
  int sms = 0;
  if (Status s = cudaStatus(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, comm->device), "cudaDeviceGetAttribute");
      !s.isOk())
    return s;
  const int reserve = comm->domains > 1 ? 2 : 0;
  const int share = std::max(1, sms / sharing - reserve);
  if (comm->config.dispatchSms > share || comm->config.combineSms > share)
    logInfo("rank %d: %d ranks share GPU %s: SM budget capped at %d of its %d SMs", comm->rank, sharing, busId, share, sms);
  comm->config.dispatchSms = std::min(comm->config.dispatchSms, share);
  comm->config.combineSms = std::min(comm->config.combineSms, share);
  return Status::ok();
}

// What the plan fixes for the network phase, carried from the plan choice to the set-up using it.
struct NetworkPlan {
  NetworkChunking chunking;
  double smShare = 0;  // the network's share of the SM budget while it runs
};

// Collective: every rank's `count` values; *rank = the first rank whose values differ from this
// rank's (-1 if none), *field = the first differing index there, *theirs = that rank's value.
Status firstDisagreement(const ncclMoeComm& comm, const int32_t* mine, int count, int* rank, int* field,
                         int32_t* theirs) {
  const size_t bytes = count * sizeof(int32_t);
  std::vector<uint8_t> all;
  if (Status s = comm.control->allGather(mine, bytes, &all); !s.isOk()) return s;
  *rank = -1;
  for (int r = 0; r < comm.ranks && *rank < 0; ++r)
    for (int f = 0; f < count; ++f) {
      int32_t value = 0;
      std::memcpy(&value, all.data() + r * bytes + f * sizeof(int32_t), sizeof(value));
      if (value != mine[f]) {
        *rank = r;
        *field = f;
        *theirs = value;
        break;
      }
    }
  return Status::ok();
}

// Each rank's verdict on starting a communicator, and the settings that change which collective
// steps creation runs. Exchanged before anything else, so that a rank that cannot start (a bad
// configuration, the wrong current device) makes every rank fail the same way instead of leaving
// the others waiting in the next exchange.
struct StartVerdict {
  int32_t code = ncclSuccess;
  int32_t topologyProbe = 1;  // NCCL_MOE_TOPOLOGY: 0 skips the cluster-view exchanges
  int32_t layoutEngine = 2;   // NCCL_MOE_LAYOUT_ENGINE: which kernels read the peers' meta
  char message[240] = {};
};

// The CUDA device of the NCCL communicator made current for one scope (the exchange must run there
// even when the caller's current device is wrong: that is one of the failures it reports).
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    if (previous_ != device) cudaSetDevice(device);
  }
  ~DeviceScope() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = -1;
};

Status agreeToStart(ncclComm_t nccl, int rank, int ranks, int device, const Status& mine, int timeoutMs) {
  StartVerdict verdict;
  verdict.code = mine.code();
  verdict.topologyProbe = static_cast<int32_t>(readParam(params::kTopology));
  verdict.layoutEngine = static_cast<int32_t>(readParam(params::kLayoutEngine));
  std::snprintf(verdict.message, sizeof(verdict.message), "%s", mine.message().c_str());
  // The first collective on a fresh communicator connects to the peers inside the NCCL call,
  // which blocks for a rank that never comes: bounded on a thread of its own.
  auto all = std::make_shared<std::vector<uint8_t>>();
  if (Status s = runBounded(timeoutMs, "the start exchange of ncclMoeCommCreate",
                            [=] {
                              DeviceScope scope(device);
                              return allGatherBytes(nccl, ranks, &verdict, sizeof(verdict), all.get(), timeoutMs);
                            });
      !s.isOk())
    return s;
  std::vector<StartVerdict> verdicts(ranks);
  std::memcpy(verdicts.data(), all->data(), all->size());
  for (int r = 0; r < ranks; ++r) {
    StartVerdict& v = verdicts[r];
    v.message[sizeof(v.message) - 1] = '\0';
    if (v.code != ncclSuccess)
      return Status::invalidUsage(format("rank %d cannot create its MoE communicator (%s): %s; no rank creates one",
                                         r, ncclGetErrorString(static_cast<ncclResult_t>(v.code)), v.message));
  }
  for (int r = 0; r < ranks; ++r)
    if (verdicts[r].topologyProbe != verdict.topologyProbe)
      return Status::invalidUsage(format("NCCL_MOE_TOPOLOGY differs between ranks: %d on rank %d, %d on rank %d; "
                                         "every rank must run the same set-up exchanges",
                                         verdict.topologyProbe, rank, verdicts[r].topologyProbe, r));
  for (int r = 0; r < ranks; ++r)
    if (verdicts[r].layoutEngine != verdict.layoutEngine)
      return Status::invalidUsage(format("NCCL_MOE_LAYOUT_ENGINE differs between ranks: %d on rank %d, %d on rank %d; "
                                         "every rank must publish and read the routing meta the same way",
                                         verdict.layoutEngine, rank, verdicts[r].layoutEngine, r));
  return Status::ok();
}

// Every rank must lay its buffer out the same way (peers address it with their own offsets):
// compare the settings that determine the layout and name the first that differs.
Status checkConfigAgrees(const ncclMoeComm& comm) {
  const CommConfig& c = comm.config;
  const int32_t mine[] = {c.shape.experts,     c.shape.hidden,          c.shape.maxTokensPerRank,
                          c.shape.maxTopk,     static_cast<int32_t>(c.rowType), c.fp8Dispatch,
                          c.fp8PowerOfTwoScales, c.lowLatencyMaxTokens,  c.lowLatencyFp8,
                          c.combineWindowTokens};
  const char* names[] = {"numExperts", "hiddenSize", "maxTokensPerRank", "maxTopk", "dataType", "fp8Dispatch",
                         "fp8PowerOfTwoScales", "lowLatencyMaxTokens", "lowLatencyFp8", "combineWindowTokens"};
  int rank = -1, field = 0;
  int32_t theirs = 0;
  if (Status s = firstDisagreement(comm, mine, sizeof(mine) / sizeof(mine[0]), &rank, &field, &theirs); !s.isOk())
    return s;
  if (rank < 0) return Status::ok();
  return Status::invalidUsage(format("ncclMoeConfig_t.%s differs between ranks: %d on rank %d, %d on rank %d; "
                                     "every rank must pass the same configuration",
                                     names[field], mine[field], comm.rank, theirs, rank));
}

// The NVLink domains: NCCL_MOE_DOMAIN_SIZE if set, else what the cluster view says (plan/plan_choice.h).
// Every rank decides from the same gathered view, so all agree.
Status choosePlanFor(ncclMoeComm* comm, NetworkPlan* network) {
  plan::PlanInput input;
  input.ranks = comm->ranks;
  input.topologyKnown = !comm->cluster.fingerprint.empty();
  input.topologyDomainSize = comm->cluster.ranksPerDomain;
  input.peerAccess = comm->cluster.peerAccess;
  input.overrideDomainSize = static_cast<int>(readParam(params::kDomainSize, 0, 1, comm->ranks));
  input.shape.experts = comm->config.shape.experts;
  input.shape.topk = comm->config.shape.maxTopk;
  input.shape.tokensPerRank = comm->config.shape.maxTokensPerRank;
  input.shape.hidden = comm->config.shape.hidden;
  input.shape.fp8Dispatch = comm->config.fp8Dispatch;
  input.shape.dispatchElementBytes = static_cast<int>(elementBytes(comm->config.rowType));
  input.shape.combineElementBytes = static_cast<int>(elementBytes(comm->config.rowType));
  input.sms = std::max(2, comm->config.dispatchSms);
  input.nvlinkGBps = comm->cluster.nvlinkGBps;
  input.networkGBps = comm->cluster.networkGBps;
  plan::ChosenPlan chosen;
  Status planned = plan::choosePlan(input, &chosen);
  if (planned.isOk() && chosen.ranksPerDomain > kMaxDomainRanks)
    planned = Status::invalidUsage(format("%d ranks in one NVLink domain: at most %d are supported",
                                          chosen.ranksPerDomain, kMaxDomainRanks));
  // Network chunks per dispatch / combine: the plan's (about its chunk of rows each, at most
  // kDefaultChunksPerCall: each costs a prologue, an NCCL group, two events, a signal and a pull
  // launch of host time); NCCL_MOE_NET_CHUNKS overrides the count.
  const int64_t slotRows = comm->config.shape.maxTokensPerRank;
  const int requestedChunks = static_cast<int>(
      readParam(params::kNetChunks, std::max(1, chosen.chunksPerCall.chunks), 1, kMaxNetworkChunks));
  const NetworkChunking chunking = chunkSlots(slotRows, requestedChunks);
  // The view is the same everywhere, but NCCL_MOE_DOMAIN_SIZE and NCCL_MOE_NET_CHUNKS are per
  // process: a rank with another value would lay out its buffer, its rail communicator or its
  // transfers differently. Compared before any failure returns, so that no rank waits for one that
  // gave up (0: no plan).
  const int32_t mine[] = {planned.isOk() ? chosen.ranksPerDomain : 0, chunking.chunks};
  const char* names[] = {"NVLink domains of", "network chunks of"};
  int rank = -1, field = 0;
  int32_t theirs = 0;
  if (Status s = firstDisagreement(*comm, mine, 2, &rank, &field, &theirs); !s.isOk()) return s;
  if (!planned.isOk()) return Status::invalidUsage(planned.message());
  if (rank >= 0 && field == 0 && theirs == 0)
    return Status::invalidUsage(format("rank %d could not choose its NVLink domains (see its error)", rank));
  if (rank >= 0)
    return Status::invalidUsage(format("rank %d uses %s %d but rank %d uses %d (check NCCL_MOE_DOMAIN_SIZE and "
                                       "NCCL_MOE_NET_CHUNKS): every rank must run the same plan",
                                       comm->rank, names[field], mine[field], rank, theirs));
  comm->domainRanks = chosen.ranksPerDomain;
  comm->domains = chosen.domains;
  network->chunking = chunking;
  comm->requestedNetChunks = requestedChunks;
  const int splitSms = chosen.smsForNetworkStaging + chosen.smsForForwarding;
  network->smShare = splitSms > 0 ? static_cast<double>(chosen.smsForNetworkStaging) / splitSms : 0;
  if (comm->rank == 0)
    logInfo("plan: %s, %d domain%s x %d rank%s (%s)", plan::toString(chosen.kind), chosen.domains,
            chosen.domains == 1 ? "" : "s", chosen.ranksPerDomain, chosen.ranksPerDomain == 1 ? "" : "s",
            chosen.reason.c_str());
  return Status::ok();
}

// When NCCL loaded this same library as its tuner plugin, the registry holds what NCCL told the
// tuner about its communicators; a single one of this size is ours: cross-check the node count.
void crossCheckWithTuner(const ncclMoeComm& comm) {
  std::vector<CommRecord> sameSize;
  for (const CommRecord& record : commRegistry().snapshot())
    if (record.ranks == static_cast<size_t>(comm.ranks)) sameSize.push_back(record);
  if (sameSize.size() != 1) return;  // not loaded as a plugin, or ambiguous
  const CommRecord& record = sameSize[0];
  logInfo("rank %d: NCCL's tuner saw this communicator: %zu ranks, %zu nodes, %d NVLink domains", comm.rank,
          record.ranks, record.nodes, record.nvlDomains);
  if (comm.cluster.nodes > 0 && static_cast<size_t>(comm.cluster.nodes) != record.nodes)
    logWarn("rank %d: the cluster view has %d nodes but NCCL counts %zu", comm.rank, comm.cluster.nodes, record.nodes);
}

}  // namespace

GroupDims groupDimsOf(const CommConfig& config, int domains) {
  GroupDims dims;
  dims.experts = config.shape.experts;
  dims.localExperts = config.shape.localExperts();
  dims.hidden = config.shape.hidden;
  dims.maxTokens = config.shape.maxTokensPerRank;
  dims.metaWidth = config.shape.maxTopk;
  dims.rowType = static_cast<int>(config.rowType);
  dims.fp8 = config.fp8Dispatch;
  dims.fp8PowerOfTwo = config.fp8PowerOfTwoScales;
  dims.scaleBlocks = fp8BlockCount(config.shape.hidden);
  dims.combineWindow = combineWindowOf(config, domains);
  return dims;
}

BufferLayout computeBufferLayout(const CommConfig& config, int ranks, int domainRanks, int domains) {
  return bufferLayoutOf(groupDimsOf(config, domains), kPhaseCount, ranks, domainRanks, domains);
}

void commInfo(const ncclMoeComm& comm, ncclMoeCommInfo_t* info) {
  const BufferLayout& layout = comm.view.layout;
  info->rank = comm.rank;
  info->ranks = comm.ranks;
  info->domains = comm.domains;
  info->ranksPerDomain = comm.domainRanks;
  info->netChunks = comm.domains > 1 ? comm.view.netChunks : 1;
  info->netChunkRows = comm.domains > 1 ? comm.view.netChunkRows : 0;
  info->dispatchSms = comm.config.dispatchSms;
  info->combineSms = comm.config.combineSms;
  info->bufferBytes = layout.total;
  const bool twoHop = comm.domains > 1;
  info->metaSlotBytes = twoHop ? layout.metaSlotBytes : 0;
  info->netDispatchRowBytes = twoHop ? layout.netDispatchRowBytes : 0;
  info->netCombineRowBytes = twoHop ? layout.netCombineRowBytes : 0;
  info->netSlotRows = twoHop ? layout.netSlotRows : 0;
  if (structHolds(info->size, offsetof(ncclMoeCommInfo_t, lowLatencyBufferBytes) + sizeof(size_t)))
    info->lowLatencyBufferBytes = comm.lowLatency ? comm.lowLatency->bufferBytes() : 0;
}

InputAreas inputAreas(const ncclMoeComm& comm) {
  const BufferLayout& layout = comm.view.layout;
  uint8_t* buffer = comm.buffer->local();
  const size_t rowBytes = static_cast<size_t>(comm.dims.hidden) * elementBytes(comm.config.rowType);
  const size_t tokens = static_cast<size_t>(comm.dims.maxTokens);
  InputAreas areas;
  areas.staging = {buffer + layout.dispatchRows, layout.combineRows - layout.dispatchRows};
  if (!comm.config.fp8Dispatch) areas.dispatch = {buffer + layout.dispatchRows, tokens * rowBytes};
  // A windowed combine's landing area holds two windows, not every row of a call: no input area.
  if (comm.dims.combineWindow == comm.dims.maxTokens)
    areas.combine = {buffer + layout.combineRows, static_cast<size_t>(comm.ranks) * tokens * rowBytes};
  return areas;
}

// This rank's verdict on the arguments of ncclMoeCommCreate (no communication).
Status checkStart(const ncclMoeConfig_t* config, ncclMoeComm* comm) {
  if (Status s = resolveConfig(config, comm->ranks, &comm->config); !s.isOk()) return s;
  int current = -1;
  if (Status s = cudaStatus(cudaGetDevice(&current), "cudaGetDevice"); !s.isOk()) return s;
  if (current != comm->device)
    return Status::invalidUsage(format("the current CUDA device is %d but the NCCL communicator uses device %d",
                                       current, comm->device));
  return Status::ok();
}

namespace {
Status setUpComm(ncclMoeComm* comm);

// The LL buffers, when the LL mode is on (every rank agrees: checkConfigAgrees, choosePlanFor); with
// several domains after the rail exchange, whose communicator the LL network groups share.
Status setUpLowLatency(ncclMoeComm* comm) {
  if (comm->config.lowLatencyMaxTokens == 0) return Status::ok();
  return LowLatencyState::create(*comm, &comm->lowLatency);
}
}  // namespace

Status createComm(ncclComm_t nccl, const ncclMoeConfig_t* config, std::unique_ptr<ncclMoeComm>* out) {
  auto comm = std::make_unique<ncclMoeComm>();
  comm->id = nextCommId();
  comm->nccl = nccl;
  // Local queries only: an NCCL communicator that cannot answer them cannot exchange anything.
  if (Status s = ncclStatus(ncclCommCount(nccl, &comm->ranks), "ncclCommCount"); !s.isOk()) return s;
  if (Status s = ncclStatus(ncclCommUserRank(nccl, &comm->rank), "ncclCommUserRank"); !s.isOk()) return s;
  if (Status s = ncclStatus(ncclCommCuDevice(nccl, &comm->device), "ncclCommCuDevice"); !s.isOk()) return s;
  // Every rank takes part in the first exchange whatever its own verdict, and all then stop, or
  // all go on. Until a valid config is known the wait is bounded by the default timeout.
  const Status mine = checkStart(config, comm.get());
  const int timeoutMs = mine.isOk() ? comm->config.timeoutMs : envTimeoutMs();
  if (Status s = agreeToStart(nccl, comm->rank, comm->ranks, comm->device, mine, timeoutMs); !s.isOk()) return s;
  comm->layoutEngine = static_cast<int>(readParam(params::kLayoutEngine));  // agreed on by every rank
  // Every rank is here: the exchanges from now on run on the library's own communicator, which a
  // failure aborts (so that nothing of it is left running when the communicator's memory is freed).
  if (Status s = ControlComm::create(nccl, comm->rank, comm->ranks, comm->config.timeoutMs, &comm->control); !s.isOk())
    return s;
  if (Status s = setUpComm(comm.get()); !s.isOk()) {
    comm->control->abort();
    return s;
  }
  *out = std::move(comm);
  return Status::ok();
}

namespace {

// What addresses the peer-visible buffer: the view's regions and peer table, the network chunks
// and, with several domains, the network jobs (their send and receive areas).
void addressBuffer(ncclMoeComm* comm, const BufferLayout& layout, const NetworkChunking& chunking) {
  DomainView& view = comm->view;
  view.peerBuffers = comm->buffer->devicePeerTable();
  view.layout = layout;
  view.netChunks = chunking.chunks;
  view.netChunkRows = chunking.rowsPerChunk;
  if (comm->domains > 1) {
    comm->networkJobs = networkJobs(comm->buffer->local(), view);
    comm->fittedJobs = comm->networkJobs;
  }
}

// createComm after the agreement to start: plan, buffers, peers, rail exchange.
Status setUpComm(ncclMoeComm* comm) {
  if (Status s = checkConfigAgrees(*comm); !s.isOk()) return s;
  if (Status s = gatherClusterView(comm->control->get(), comm->rank, comm->ranks, comm->config.timeoutMs, &comm->cluster);
      !s.isOk())
    return s;
  if (comm->rank == 0 && !comm->cluster.summary.empty()) logInfo("cluster: %s", comm->cluster.summary.c_str());
  crossCheckWithTuner(*comm);
  NetworkPlan network;
  if (Status s = choosePlanFor(comm, &network); !s.isOk()) return s;
  if (Status s = capSmsOnSharedDevice(comm); !s.isOk()) return s;
  splitSmsForNetwork(comm, network.smShare);
  comm->dims = groupDimsOf(comm->config, comm->domains);
  const BufferLayout layout = computeBufferLayout(comm->config, comm->ranks, comm->domainRanks, comm->domains);
  const int domain = comm->rank / comm->domainRanks;
  if (Status s = PeerBuffer::create(comm->control->get(), comm->rank, comm->ranks, domain * comm->domainRanks, comm->domainRanks,
                                    layout.total, comm->config.timeoutMs, &comm->buffer);
      !s.isOk())
    return s;
  if (Status s = allocateDevice(1, &comm->epochs, "cudaMalloc(epochs)"); !s.isOk()) return s;
  if (Status s = allocateDevice(1, &comm->errorDevice, "cudaMalloc(error record)"); !s.isOk()) return s;
  if (Status s = allocateMapped(1, &comm->errorHost, "cudaHostAlloc(error record)"); !s.isOk()) return s;
  if (Status s = allocateDevice(1, &comm->faultKey, "cudaMalloc(fault key)"); !s.isOk()) return s;
  *comm->errorHost.get() = ErrorRecord{};
  if (Status s = cudaStatus(cudaMemset(comm->epochs.get(), 0, sizeof(DeviceEpochs)), "cudaMemset"); !s.isOk()) return s;
  if (Status s = cudaStatus(cudaMemset(comm->errorDevice.get(), 0, sizeof(ErrorRecord)), "cudaMemset"); !s.isOk())
    return s;
  if (Status s = cudaStatus(cudaMemset(comm->faultKey.get(), 0xFF, sizeof(uint64_t)), "cudaMemset"); !s.isOk())
    return s;
  ErrorRecord* errorHostDevice = nullptr;
  if (Status s = cudaStatus(cudaHostGetDevicePointer(reinterpret_cast<void**>(&errorHostDevice), comm->errorHost.get(), 0),
                            "cudaHostGetDevicePointer");
      !s.isOk())
    return s;
  if (Status s = cudaStatus(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); !s.isOk()) return s;

  DomainView& view = comm->view;
  view.rank = comm->rank;
  view.ranks = comm->ranks;
  view.localRank = comm->rank % comm->domainRanks;
  view.localRanks = comm->domainRanks;
  view.domain = domain;
  view.domains = comm->domains;
  view.error = comm->errorDevice.get();
  view.errorHost = errorHostDevice;
  view.hostRecordsFailures = comm->domains > 1;  // the rail exchange's watchdog
  view.timeoutNs = static_cast<uint64_t>(comm->config.timeoutMs) * 1000000ull;
  view.epochs = comm->epochs.get();
  addressBuffer(comm, layout, network.chunking);
  if (comm->domains > 1)
    if (Status s = setUpRailExchange(comm); !s.isOk()) return s;
  if (Status s = setUpLowLatency(comm); !s.isOk()) return s;
  logInfo("rank %d/%d: MoE communicator on device %d, %d experts, hidden %d, max %d tokens, top-%d, %s rows%s, "
          "buffer %.1f MiB",
          comm->rank, comm->ranks, comm->device, comm->config.shape.experts, comm->config.shape.hidden,
          comm->config.shape.maxTokensPerRank, comm->config.shape.maxTopk, toString(comm->config.rowType),
          comm->config.fp8Dispatch ? " (FP8 dispatch)" : "", layout.total / 1048576.0);
  if (comm->config.combineWindowTokens > 0 && comm->rank == 0)
    logInfo("combine windows: %s", comm->dims.combineWindow < comm->dims.maxTokens
                                       ? format("%d tokens per source rank, two in flight", comm->dims.combineWindow).c_str()
                                       : "none (combineWindowTokens needs one NVLink domain and 2 x window < maxTokensPerRank)");
  if (comm->domains > 1)
    logInfo("rank %d: network phase over NCCL point-to-point with %d rail peers, slots of %zu rows in %d chunk%s of "
            "%d rows per dispatch and combine (NCCL_MOE_NET_CHUNKS); network staging %.1f MiB of the buffer "
            "(dispatch %.1f + combine %.1f)",
            comm->rank, comm->domains - 1, layout.netSlotRows, view.netChunks, view.netChunks == 1 ? "" : "s",
            view.netChunkRows, (layout.total - layout.netDispatchSend) / 1048576.0,
            (layout.netCombineSend - layout.netDispatchSend) / 1048576.0,
            (layout.total - layout.netCombineSend) / 1048576.0);
  return Status::ok();
}

}  // namespace

namespace {

// A routing fault (or a K that differs between ranks) that an LL dispatch found on the device; every
// rank records the same one (the lowest faulty rank's).
Status lowLatencyFaultStatus(const ncclMoeComm& comm, const ErrorRecord& record) {
  const char* after =
      " (found by the low-latency dispatch: nothing was written to any output on any rank); the communicator is "
      "unusable (destroy it)";
  if (record.expected == kLowLatencyTopkMismatch)
    return Status::invalidArgument(format("rank %d passed topk=%lld to the low-latency dispatch but rank 0 passed "
                                          "topk=%llu: K must be the same on every rank%s",
                                          record.peer, (long long)record.value, (unsigned long long)record.observed,
                                          after));
  RoutingFaultRecord fault;
  fault.fault = static_cast<RoutingFault>(record.expected);
  fault.token = static_cast<int32_t>(record.token);
  fault.slot = static_cast<int32_t>(record.slot);
  fault.value = record.value;
  return Status::invalidArgument(describeRoutingFault(fault, record.peer, comm.config.shape) + after);
}

}  // namespace

Status asyncError(const ncclMoeComm& comm) {
  if (!comm.unusableSince.empty())
    return {ncclRemoteError, format("rank %d: the communicator failed: %s; it is unusable (destroy it)", comm.rank,
                                    comm.unusableSince.c_str())};
  const volatile ErrorRecord* record = comm.errorHost.get();
  if (record == nullptr || record->kind == kErrorNone) return Status::ok();
  if (record->kind == kErrorNetworkTimeout) {
    const int64_t chunk = record->slot;  // -1: an unchunked job (the layout's meta)
    const std::string which = chunk < 0 ? "" : format(", chunk %lld of %d", static_cast<long long>(chunk) + 1,
                                                      comm.view.netChunks);
    return {ncclRemoteError,
            format("rank %d timed out after %llu ms in the network phase with rail peer %d (%s%s): the rail "
                   "communicator was aborted; the communicator is unusable (destroy it)",
                   record->rank, (unsigned long long)record->expected, record->peer, phaseName(record->phase),
                   which.c_str())};
  }
  if (record->kind == kErrorRoutingFault) return lowLatencyFaultStatus(comm, *const_cast<const ErrorRecord*>(record));
  if (record->kind == kErrorRailPeerFailed) {
    const int64_t chunk = record->slot;
    const std::string which = chunk < 0 ? "" : format(", chunk %lld of %d", static_cast<long long>(chunk) + 1,
                                                      comm.view.netChunks);
    return {ncclRemoteError,
            format("rank %d: rail peer %d had already failed when it sent its part of the network phase (%s%s); "
                   "what it sent was not used; the communicator is unusable (destroy it)",
                   record->rank, record->peer, phaseName(record->phase), which.c_str())};
  }
  if (record->phase == kPhaseNetRowsReady || record->phase == kPhaseNetPartialsReady)
    return {ncclRemoteError,
            format("rank %d timed out after %d ms waiting for peer %d (%s, chunk %d of %d): its signal is %llu, "
                   "expected >= %llu; the communicator is unusable (destroy it)",
                   record->rank, comm.config.timeoutMs, record->peer, phaseName(record->phase),
                   chunkOfSignal(record->expected) + 1, comm.view.netChunks, (unsigned long long)record->observed,
                   (unsigned long long)record->expected)};
  if (record->phase == kPhaseWindowStaged || record->phase == kPhaseWindowRead)
    return {ncclRemoteError,
            format("rank %d timed out after %d ms waiting for peer %d (%s, window %d of %d tokens): its signal is "
                   "%llu, expected >= %llu; the communicator is unusable (destroy it)",
                   record->rank, comm.config.timeoutMs, record->peer, phaseName(record->phase),
                   windowOfSignal(record->expected), comm.dims.combineWindow,
                   (unsigned long long)record->observed, (unsigned long long)record->expected)};
  return {ncclRemoteError,
          format("rank %d timed out after %d ms waiting for peer %d (%s): its signal is %llu, expected >= %llu; the "
                 "communicator is unusable (destroy it)",
                 record->rank, comm.config.timeoutMs, record->peer, phaseName(record->phase),
                 (unsigned long long)record->observed, (unsigned long long)record->expected)};
}

Status quiesce(ncclMoeComm* comm) {
  // After a timeout a rail peer may never answer: its NCCL kernels must be aborted, not awaited.
  if (comm->rail && !asyncError(*comm).isOk()) comm->rail->abort();
  return cudaStatus(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

Status destroyComm(ncclMoeComm* comm) {
  Status status = quiesce(comm);
  if (status.isOk() && asyncError(*comm).isOk()) {
    // Peers may still read this rank's buffer: a collective round trip guarantees they are done.
    // (If a rank never comes, the control communicator aborts itself: nothing of the exchange is
    // left running when the buffers are freed.)
    std::vector<uint8_t> unused;
    const uint8_t token = 1;
    status = comm->control->allGather(&token, 1, &unused);
  }
  return status;
}

namespace {

// Each rank's verdict on a resize and the size it asked for, exchanged before anything changes.
struct ResizeVerdict {
  int32_t code = ncclSuccess;
  int32_t maxTokensPerRank = 0;
  char message[240] = {};
};

// Collective: every rank's verdict; the first failure or a size that differs from this rank's,
// named, else ok (on every rank alike).
Status agreeToResize(const ncclMoeComm& comm, const Status& mine, int maxTokensPerRank) {
  ResizeVerdict verdict;
  verdict.code = mine.code();
  verdict.maxTokensPerRank = maxTokensPerRank;
  std::snprintf(verdict.message, sizeof(verdict.message), "%s", mine.message().c_str());
  std::vector<uint8_t> all;
  if (Status s = comm.control->allGather(&verdict, sizeof(verdict), &all); !s.isOk()) return s;
  std::vector<ResizeVerdict> verdicts(comm.ranks);
  std::memcpy(verdicts.data(), all.data(), all.size());
  for (int r = 0; r < comm.ranks; ++r) {
    ResizeVerdict& v = verdicts[r];
    v.message[sizeof(v.message) - 1] = '\0';
    if (v.code != ncclSuccess)
      return {v.code == ncclInvalidArgument ? ncclInvalidArgument : ncclInvalidUsage,
              format("rank %d cannot resize its MoE communicator (%s): %s; no rank resized, the communicator is "
                     "unchanged",
                     r, ncclGetErrorString(static_cast<ncclResult_t>(v.code)), v.message)};
  }
  for (int r = 0; r < comm.ranks; ++r)
    if (verdicts[r].maxTokensPerRank != maxTokensPerRank)
      return Status::invalidUsage(format("maxTokensPerRank differs between ranks: %d on rank %d, "
                                         "%d on rank %d; no rank resized, the communicator is unchanged",
                                         maxTokensPerRank, comm.rank, verdicts[r].maxTokensPerRank, r));
  return Status::ok();
}

// This rank's part: the new size is valid, the communicator healthy and idle, the new buffer
// allocated (so that a rank out of memory fails the resize on every rank before anything changed).
Status prepareResize(ncclMoeComm* comm, int maxTokensPerRank, CommConfig* next, BufferLayout* layout,
                     std::unique_ptr<PeerBuffer>* fresh) {
  *next = comm->config;
  next->shape.maxTokensPerRank = maxTokensPerRank;
  if (maxTokensPerRank < 1)
    return Status::invalidArgument(format("maxTokensPerRank=%d must be positive", maxTokensPerRank));
  if (Status s = checkGroupShape(next->shape); !s.isOk())
    return Status::invalidArgument(format("maxTokensPerRank=%d: %s", maxTokensPerRank, s.message().c_str()));
  if (Status s = asyncError(*comm); !s.isOk()) return s;
  // Every call of this rank has finished (and its peers' reads of this buffer with it: the
  // calls end only once the domain is done with what they exposed).
  if (Status s = quiesce(comm); !s.isOk()) return s;
  *layout = computeBufferLayout(*next, comm->ranks, comm->domainRanks, comm->domains);
  return PeerBuffer::allocate(comm->rank, layout->total, fresh);
}

}  // namespace

Status resizeComm(ncclMoeComm* comm, int maxTokensPerRank) {
  CommConfig next;
  BufferLayout layout;
  std::unique_ptr<PeerBuffer> fresh;
  const Status mine = prepareResize(comm, maxTokensPerRank, &next, &layout, &fresh);
  if (Status s = agreeToResize(*comm, mine, maxTokensPerRank); !s.isOk()) return s;
  // From here every rank replaces its buffer; a failure leaves the communicator unusable. The old
  // mappings close before the exchange inside map(), and the old buffer is freed only after it:
  // by then no rank maps it any more.
  std::unique_ptr<PeerBuffer> old = std::move(comm->buffer);
  old->closePeers();
  const int firstRank = comm->view.domain * comm->domainRanks;
  if (Status s = fresh->map(comm->control->get(), comm->ranks, firstRank, comm->domainRanks, comm->config.timeoutMs);
      !s.isOk()) {
    comm->control->abort();
    comm->buffer = std::move(old);  // its peer mappings are closed: every later call is refused
    comm->unusableSince = s.message() + " (in ncclMoeCommResize, after every rank had agreed)";
    return {s.code(), s.message() + " (while resizing: the communicator is unusable, destroy it)"};
  }
  old.reset();
  comm->buffer = std::move(fresh);
  comm->config = next;
  comm->dims = groupDimsOf(next, comm->domains);
  // The new buffer's signals start at zero: so do the epochs that calls compare them with.
  if (Status s = cudaStatus(cudaMemset(comm->epochs.get(), 0, sizeof(DeviceEpochs)), "cudaMemset(epochs)"); !s.isOk())
    return s;
  addressBuffer(comm, layout, chunkSlots(maxTokensPerRank, comm->requestedNetChunks));
  if (comm->rail) comm->rail->retarget(comm->view);
  if (comm->lowLatency) comm->lowLatency->retargetDomain(comm->view);
  comm->id = nextCommId();  // handles of the old size are refused from now on
  if (Status s = cudaStatus(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); !s.isOk()) return s;
  if (comm->rank == 0)
    logInfo("MoE communicator resized to %d tokens per rank: buffer %.1f MiB per rank", maxTokensPerRank,
            layout.total / 1048576.0);
  return Status::ok();
}

}  // namespace nccl_moe
