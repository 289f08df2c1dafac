#include "tools/perf/ll_sweep.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "nccl_moe.h"
#include "reference/low_latency.h"
#include "reference/random_routing.h"
#include "tools/common/loaded_nccl.h"
#include "tools/harness/device_layer.h"
#include "tools/harness/group_timing.h"
#include "tools/perf/baseline_kernels.h"
#include "tools/perf/json_report.h"
#include "tools/perf/ll_check.h"
#include "tools/perf/ll_report.h"
#include "tools/perf/sweep.h"

namespace nccl_moe::perf {
namespace {

using namespace harness;  // the harness's checks and device buffers

int fp8ModeOf(const std::string& type) { return type == "fp8" ? 1 : type == "fp8-pow2" ? 2 : 0; }

// Calls timed one by one: `iters` pairs of CUDA events on the stream around each call.
class CallTimer {
 public:
  CallTimer(harness::GroupReduce& group, cudaStream_t stream, int iters) : group_(group), stream_(stream) {
    start_.resize(static_cast<size_t>(iters));
    stop_.resize(static_cast<size_t>(iters));
    for (size_t i = 0; i < start_.size(); ++i) {
      checkCuda(cudaEventCreate(&start_[i]), "cudaEventCreate");
      checkCuda(cudaEventCreate(&stop_[i]), "cudaEventCreate");
    }
  }
  ~CallTimer() {
    for (size_t i = 0; i < start_.size(); ++i) {
      cudaEventDestroy(start_[i]);
      cudaEventDestroy(stop_[i]);
    }
  }
  CallTimer(const CallTimer&) = delete;
  CallTimer& operator=(const CallTimer&) = delete;

  // `warmup` calls, a barrier, then the timed calls: the slowest rank's p50 / p99 / mean. With
  // `hostUs`, also the median host time of the timed calls (slowest rank).
  LatencyStats time(int warmup, const std::function<void()>& call, double* hostUs = nullptr) {
    for (int i = 0; i < warmup; ++i) call();
    group_.barrier();
    std::vector<double> host;
    host.reserve(start_.size());
    for (size_t i = 0; i < start_.size(); ++i) {
      checkCuda(cudaEventRecord(start_[i], stream_), "cudaEventRecord");
      const auto begin = std::chrono::steady_clock::now();
      call();
      host.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - begin).count());
      checkCuda(cudaEventRecord(stop_[i], stream_), "cudaEventRecord");
    }
    checkCuda(cudaEventSynchronize(stop_.back()), "cudaEventSynchronize");
    std::vector<double> samples;
    for (size_t i = 0; i < start_.size(); ++i) {
      float ms = 0;
      checkCuda(cudaEventElapsedTime(&ms, start_[i], stop_[i]), "cudaEventElapsedTime");
      samples.push_back(static_cast<double>(ms) * 1000.0);
    }
    const LatencyStats mine = latencyStats(samples);
    LatencyStats slowest{group_.max(mine.p50), group_.max(mine.p99), group_.max(mine.mean)};
    if (hostUs != nullptr) {
      std::sort(host.begin(), host.end());
      *hostUs = group_.max(host[host.size() / 2]);
    }
    return slowest;
  }

  // The same with `call` captured once in a CUDA graph and the graph launched per timed call.
  LatencyStats timeGraph(int warmup, const std::function<void()>& call) {
    cudaGraph_t graph = nullptr;
    checkCuda(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
    try {
      call();
    } catch (...) {
      cudaStreamEndCapture(stream_, &graph);
      if (graph != nullptr) cudaGraphDestroy(graph);
      throw;
    }
    checkCuda(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    checkCuda(instantiated, "cudaGraphInstantiate");
    struct ExecDeleter {
      void operator()(cudaGraphExec_t e) const { cudaGraphExecDestroy(e); }
    };
    const std::unique_ptr<std::remove_pointer_t<cudaGraphExec_t>, ExecDeleter> owned(exec);
    return time(warmup, [&] { checkCuda(cudaGraphLaunch(exec, stream_), "cudaGraphLaunch"); });
  }

 private:
  harness::GroupReduce& group_;
  cudaStream_t stream_;
  std::vector<cudaEvent_t> start_, stop_;
};

// One LL communicator (one dispatch type) and the device buffers of its calls, sized for N.
struct LowLatencyComm {
  std::string type;
  LowLatencyShape shape;
  ncclMoeComm_t comm = nullptr;
  ncclMoeCommInfo_t info = NCCL_MOE_COMM_INFO_INITIALIZER;
  DeviceBuffer x, ids, weights, recvX, recvScales, recvCount, recvSrcInfo, y, out;
  ncclMoeLowLatencyDispatchArgs_t dispatch = NCCL_MOE_LOW_LATENCY_DISPATCH_ARGS_INITIALIZER;
  ncclMoeLowLatencyCombineArgs_t combine = NCCL_MOE_LOW_LATENCY_COMBINE_ARGS_INITIALIZER;
  // Destroyed explicitly at the end (collective): after a failure the process exits instead of
  // waiting in a destroy the other ranks never join.
};

struct Session {
  explicit Session(const Options& options) : o(options) {}
  const Options& o;
  int ranks = 1, me = 0;
  ncclComm_t nccl = nullptr;
  cudaStream_t stream = nullptr;
  LowLatencyRunDescription run;
};

std::unique_ptr<LowLatencyComm> createComm(const Session& s, const std::string& type, bool withCombine) {
  const Options& o = s.o;
  const int N = o.lowLatencyMaxTokens(), fp8 = fp8ModeOf(type);
  auto c = std::make_unique<LowLatencyComm>();
  c->type = type;
  c->shape = LowLatencyShape{s.ranks, s.ranks, o.experts, o.hidden, o.topk, N, fp8 != 0, fp8 == 2};
  ncclMoeConfig_t config = NCCL_MOE_CONFIG_INITIALIZER;
  config.numExperts = o.experts;
  config.hiddenSize = o.hidden;
  config.maxTokensPerRank = N;  // the HT path of the same run, at the same T
  config.maxTopk = o.topk;
  config.dataType = ncclBfloat16;
  config.fp8Dispatch = fp8 != 0;
  config.fp8PowerOfTwoScales = fp8 == 2;
  config.dispatchSms = o.sms;
  config.combineSms = o.sms;
  config.lowLatencyMaxTokens = N;
  config.lowLatencyFp8 = fp8;
  checkMoe(ncclMoeCommCreate(s.nccl, &config, &c->comm), "ncclMoeCommCreate", nullptr);
  checkMoe(ncclMoeCommGetInfo(c->comm, &c->info), "ncclMoeCommGetInfo", c->comm);
  c->shape.ranksPerDomain = c->info.ranksPerDomain > 0 ? c->info.ranksPerDomain : s.ranks;
  const LowLatencyOutputSizes sizes = lowLatencyOutputSizes(c->shape);
  const size_t tokenRow = static_cast<size_t>(o.hidden) * 2;
  c->x = DeviceBuffer(static_cast<size_t>(N) * tokenRow);
  c->ids = DeviceBuffer(static_cast<size_t>(N) * o.topk * sizeof(int64_t));
  c->weights = DeviceBuffer(static_cast<size_t>(N) * o.topk * sizeof(float));
  c->recvX = DeviceBuffer(static_cast<size_t>(sizes.xBytes));
  c->recvScales = DeviceBuffer(static_cast<size_t>(sizes.scaleFloats) * sizeof(float));
  c->recvCount = DeviceBuffer(static_cast<size_t>(sizes.counts) * sizeof(int32_t));
  c->recvSrcInfo = DeviceBuffer(static_cast<size_t>(sizes.srcInfoInts) * sizeof(int32_t));
  c->y = DeviceBuffer(withCombine ? static_cast<size_t>(sizes.rows) * tokenRow : 0);
  c->out = DeviceBuffer(static_cast<size_t>(N) * tokenRow);
  c->y.fill(0, s.stream);
  c->dispatch.topk = o.topk;
  c->dispatch.x = c->x.get();
  c->dispatch.topkIdx = c->ids.get<int64_t>();
  c->dispatch.recvX = c->recvX.get();
  c->dispatch.recvScales = fp8 != 0 ? c->recvScales.get<float>() : nullptr;
  c->dispatch.recvCount = c->recvCount.get<int32_t>();
  c->dispatch.recvSrcInfo = c->recvSrcInfo.get<int32_t>();
  c->combine.topk = o.topk;
  c->combine.y = c->y.get();
  c->combine.recvCount = c->recvCount.get<int32_t>();
  c->combine.recvSrcInfo = c->recvSrcInfo.get<int32_t>();
  c->combine.topkIdx = c->ids.get<int64_t>();
  c->combine.weights = c->weights.get<float>();
  c->combine.out = c->out.get();
  return c;
}

// The group's routing, weights and (-c 1) every rank's tokens for T tokens per rank, from the seed:
// the same on every rank.
LowLatencyGroup makeGroup(const Session& s, int T) {
  const Options& o = s.o;
  LowLatencyGroup g;
  // The communicator's domains: with several, -c 1 expects the two-hop combine order.
  const int perDomain = s.run.ranksPerDomain > 0 ? s.run.ranksPerDomain : s.ranks;
  g.shape = LowLatencyShape{s.ranks, perDomain, o.experts, o.hidden, o.topk, o.lowLatencyMaxTokens(), false, false};
  g.topk = o.topk;
  g.expertSeed = o.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(T);
  std::mt19937_64 rng(o.seed * 1000003ull + static_cast<uint64_t>(T));
  RoutingRecipe recipe;
  recipe.numTokens = T;
  recipe.topk = o.topk;
  recipe.experts = o.experts;
  recipe.withProbs = false;
  std::uniform_real_distribution<float> weight(-1.0f, 1.0f);
  for (int r = 0; r < s.ranks; ++r) {
    g.routings.push_back(randomTopkRouting(recipe, rng));
    std::vector<float> w(static_cast<size_t>(T) * o.topk);
    for (float& v : w) v = weight(rng);
    g.weights.push_back(std::move(w));
  }
  for (int r = 0; r < s.ranks; ++r) {
    std::mt19937_64 tokens(o.seed * 0x2545F4914F6CDD1Dull + static_cast<uint64_t>(T) * 7919ull + static_cast<uint64_t>(r));
    if (o.check || r == s.me) g.x.push_back(randomRows(ElementType::kBf16, T, o.hidden, 2.0f, tokens));
    else g.x.emplace_back();
  }
  return g;
}

// One copy of `bytes` by rank 0 (the others wait in the barrier): the copy floor.
LatencyStats copyFloor(const Session& s, CallTimer& timer, size_t bytes) {
  const size_t mine = s.me == 0 ? bytes : 0;
  DeviceBuffer source(mine), destination(mine);
  return timer.time(s.o.warmup, [&] {
    if (mine > 0)
      checkCuda(cudaMemcpyAsync(destination.get(), source.get(), mine, cudaMemcpyDeviceToDevice, s.stream),
                "cudaMemcpyAsync (copy floor)");
  });
}

template <class T>
std::vector<T> download(const DeviceBuffer& buffer, size_t count, cudaStream_t stream) {
  std::vector<T> host(count);
  buffer.download(host.data(), count * sizeof(T), stream);
  return host;
}

void printHeader(const Session& s, const std::vector<std::unique_ptr<LowLatencyComm>>& comms) {
  const Options& o = s.o;
  std::printf("# nccl-moe-perf %s --low-latency: %d ranks on %s, %d experts, top-%d, hidden %d, lowLatencyMaxTokens %d, "
              "%d SMs per op, %d calls after %d warm-up, check %s\n",
              s.run.version.c_str(), s.ranks, s.run.device.c_str(), o.experts, o.topk, o.hidden, o.lowLatencyMaxTokens(),
              o.sms, o.iters, o.warmup, o.check ? "on (-c 1)" : "off (-c 0)");
  std::string buffers;
  for (const auto& c : comms)
    buffers += (buffers.empty() ? "" : ", ") + c->type + " " +
               fixed(static_cast<double>(c->info.lowLatencyBufferBytes) / 1048576.0, 1) + " MiB";
  std::printf("# LL buffers per rank: %s; combine on the %s communicator; the HT path runs on the same communicator\n",
              buffers.c_str(), comms.front()->type.c_str());
  const std::string legend = lowLatencyLegend();
  for (size_t start = 0; start < legend.size();) {
    const size_t end = legend.find('\n', start);
    std::printf("#%s\n", legend.substr(start, end - start).c_str());
    start = end + 1;
  }
  std::printf("%s", headerLines(lowLatencyColumns(s.run)).c_str());
  std::fflush(stdout);
}

// Several domains: this rank's network payload (one row per token and other domain it needs) and
// the fixed-slot wire bytes of one call (docs/low_latency.md section 10).
void addNetworkBytes(const LowLatencyComm& c, const LowLatencyGroup& g, int me, bool dispatch, LowLatencyRow* row) {
  if (c.info.domains <= 1) return;
  LowLatencyTwoHop plan;
  LowLatencyShape shape = c.shape;
  if (!lowLatencyTwoHop(shape, g.routings, &plan).isOk()) return;
  const LowLatencyNetworkModel model = lowLatencyUniformNetworkModel(shape, g.routings[me].numTokens, g.topk);
  const double payloadRow = static_cast<double>(dispatch ? model.dispatchPayloadRowBytes : model.combinePayloadRowBytes);
  row->networkPayloadBytes = static_cast<double>(plan.networkRowsSent[static_cast<size_t>(me)]) * payloadRow;
  row->wireBytes = static_cast<double>(dispatch ? model.fixedWireDispatchBytes : model.fixedWireCombineBytes);
}

// The rows of one token count on one communicator: its dispatch and, with `withCombine`, its
// combine.
void measure(const Session& s, harness::GroupReduce& group, CallTimer& timer, LowLatencyComm& c, const LowLatencyGroup& g,
             bool withCombine, std::vector<LowLatencyRow>* rows) {
  const Options& o = s.o;
  const int me = s.me, T = g.routings[static_cast<size_t>(me)].numTokens;
  const RankRouting& routing = g.routings[static_cast<size_t>(me)];
  c.x.upload(g.x[static_cast<size_t>(me)].bytes(), s.stream);
  c.ids.upload(routing.topkIdx, s.stream);
  c.weights.upload(g.weights[static_cast<size_t>(me)], s.stream);
  c.dispatch.numTokens = T;
  c.combine.numTokens = T;
  const std::vector<int64_t> received = receivedRowsPerRank(g);
  double groupRows = 0;
  for (int64_t r : received) groupRows += static_cast<double>(r);
  const auto llDispatch = [&] {
    checkMoe(ncclMoeLowLatencyDispatch(c.comm, &c.dispatch, s.stream), "ncclMoeLowLatencyDispatch", c.comm);
  };
  const auto llCombine = [&] {
    checkMoe(ncclMoeLowLatencyCombine(c.comm, &c.combine, s.stream), "ncclMoeLowLatencyCombine", c.comm);
  };

  harness::LayerShape layerShape;
  layerShape.hidden = o.hidden;
  layerShape.topk = o.topk;
  layerShape.localExperts = c.shape.localExperts();
  layerShape.rowType = ElementType::kBf16;
  layerShape.fp8 = c.shape.fp8;
  harness::DeviceLayer layer(c.comm, s.stream, layerShape);
  layer.setInputs(routing, g.x[static_cast<size_t>(me)]);

  LowLatencyRow d;
  d.tokens = T;
  d.op = "dispatch";
  d.type = c.type;
  d.rowsPerRank = groupRows / s.ranks;
  d.rowBytes = static_cast<double>(c.shape.fp8 ? o.hidden + 4 * c.shape.scaleBlocks() : 2 * o.hidden);
  d.eager = timer.time(o.warmup, llDispatch, &d.hostUs);
  d.graph = timer.timeGraph(o.warmup, llDispatch);
  d.highThroughput = timer.time(o.warmup, [&] {
    layer.createLayout();
    layer.dispatch();
  });
  d.copy = copyFloor(s, timer, static_cast<size_t>(groupRows * d.rowBytes));
  addNetworkBytes(c, g, me, true, &d);
  const LowLatencyRankLayout expected = o.check ? expectedLayout(g, me) : LowLatencyRankLayout{};
  if (o.check) {
    c.recvCount.fill(0xAB, s.stream);
    llDispatch();
    checkCuda(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize");
    const LowLatencyOutputSizes sizes = lowLatencyOutputSizes(c.shape);
    LowLatencyDispatchOutput got;
    got.recvX = download<uint8_t>(c.recvX, static_cast<size_t>(sizes.xBytes), s.stream);
    got.recvScales = download<float>(c.recvScales, static_cast<size_t>(sizes.scaleFloats), s.stream);
    got.recvCount = download<int32_t>(c.recvCount, static_cast<size_t>(sizes.counts), s.stream);
    got.recvSrcInfo = download<int32_t>(c.recvSrcInfo, static_cast<size_t>(sizes.srcInfoInts), s.stream);
    LowLatencyGroup checked = g;
    checked.shape = c.shape;
    std::string first;
    const int64_t wrong = wrongDispatchElements(checked, expected, got, &first);
    if (wrong > 0)
      std::fprintf(stderr, "nccl-moe-perf: rank %d, %d tokens, %s dispatch: %lld elements wrong; first: %s\n", me, T,
                   c.type.c_str(), (long long)wrong, first.c_str());
    d.wrong = group.sum(wrong);
  }
  rows->push_back(d);
  if (!withCombine) return;

  LowLatencyRow m;
  m.tokens = T;
  m.op = "combine";
  m.type = "bf16";
  m.rowsPerRank = d.rowsPerRank;
  m.rowBytes = 2.0 * o.hidden;
  if (o.check) c.y.upload(expertOutputs(g, expected).bytes(), s.stream);
  llDispatch();  // the layout the combine follows (its counts and source info)
  m.eager = timer.time(o.warmup, llCombine, &m.hostUs);
  m.graph = timer.timeGraph(o.warmup, llCombine);
  layer.zeroExpertOutput();
  m.highThroughput = timer.time(o.warmup, [&] { layer.combine(); });
  m.copy = copyFloor(s, timer, static_cast<size_t>(groupRows * m.rowBytes));
  addNetworkBytes(c, g, me, false, &m);
  if (o.check) {
    c.out.fill(0xAB, s.stream);
    llCombine();
    checkCuda(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize");
    const std::vector<uint8_t> got = download<uint8_t>(c.out, static_cast<size_t>(T) * 2 * o.hidden, s.stream);
    std::string first;
    const int64_t wrong = wrongRows(expectedCombine(g, me, true), got, &first);
    if (wrong > 0)
      std::fprintf(stderr, "nccl-moe-perf: rank %d, %d tokens, combine: %lld elements wrong; first: %s\n", me, T,
                   (long long)wrong, first.c_str());
    m.wrong = group.sum(wrong);
  }
  rows->push_back(m);
}

}  // namespace

int runLowLatencySweep(const Options& o, const RankLayout& layout, tools::OutputFile& json) {
  Session s(o);
  s.ranks = layout.size;
  s.me = layout.rank;
  const RankBootstrap setup = bootstrapRank(layout);
  checkNccl(ncclCommInitRank(&s.nccl, layout.size, setup.uniqueId, layout.rank), "ncclCommInitRank");
  checkCuda(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  cudaDeviceProp prop;
  checkCuda(cudaGetDeviceProperties(&prop, setup.device), "cudaGetDeviceProperties");

  std::vector<LowLatencyRow> rows;
  {
    std::vector<std::unique_ptr<LowLatencyComm>> comms;
    const std::vector<std::string> types = o.lowLatencyDispatchTypes();
    for (size_t i = 0; i < types.size(); ++i) comms.push_back(createComm(s, types[i], i == 0));
    LowLatencyRunDescription& run = s.run;
    static_cast<RunBasics&>(run) = runBasicsOf(o, s.ranks, prop.name, tools::versionWithLoadedNccl());
    run.maxTokens = o.lowLatencyMaxTokens();
    run.domains = comms.front()->info.domains;
    run.ranksPerDomain = comms.front()->info.ranksPerDomain;
    run.dispatchTypes = types;
    for (const auto& c : comms) run.lowLatencyBufferBytes.push_back(c->info.lowLatencyBufferBytes);
    if (s.me == 0) printHeader(s, comms);

    harness::GroupReduce group(s.nccl, s.stream);
    CallTimer timer(group, s.stream, o.iters);
    run.emptyKernel = timer.time(o.warmup, [&] { checkCuda(launchEmptyKernel(s.stream), "launch (empty kernel)"); },
                                 &run.emptyKernelHostUs);
    const std::vector<Column> columns = lowLatencyColumns(run);
    for (int T : tokenSweep(o)) {
      const LowLatencyGroup g = makeGroup(s, T);
      const size_t before = rows.size();
      for (size_t i = 0; i < comms.size(); ++i) measure(s, group, timer, *comms[i], g, i == 0, &rows);
      if (s.me != 0) continue;
      for (size_t r = before; r < rows.size(); ++r) std::printf("%s", rowLine(columns, lowLatencyCells(run, rows[r])).c_str());
      std::fflush(stdout);
    }
    if (s.me == 0) {
      std::printf("%s", lowLatencySummaryLines(run, rows).c_str());
      std::fflush(stdout);
    }
    for (const auto& c : comms) checkMoe(ncclMoeCommDestroy(c->comm), "ncclMoeCommDestroy", nullptr);
  }
  const std::string text = json ? lowLatencyJsonText(s.run, rows) : "";
  return endRun(s.nccl, s.stream, json, text, lowLatencyWrongTotal(rows));
}

}  // namespace nccl_moe::perf
