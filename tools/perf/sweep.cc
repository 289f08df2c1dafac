#include "tools/perf/sweep.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "nccl_moe.h"
#include "reference/hybrid_plan.h"
#include "reference/random_routing.h"
#include "tools/common/loaded_nccl.h"
#include "tools/harness/device_layer.h"
#include "tools/harness/group_timing.h"
#include "tools/harness/reference_layer.h"
#include "tools/perf/baseline_kernels.h"
#include "tools/perf/json_report.h"
#include "tools/perf/phase_report.h"
#include "tools/perf/table.h"

namespace nccl_moe::perf {
namespace {

using namespace harness;  // the harness's checks and device buffers

ElementType rowTypeOf(const Options& o) { return o.fp32() ? ElementType::kFp32 : ElementType::kBf16; }

// With -c 1 every rank's tokens, each rank's from a seed of its own, so that a row delivered from
// the wrong rank or token shows.
HostRows checkedTokens(const Options& o, int tokens, int rank) {
  std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(tokens) * 1000003ull +
                      static_cast<uint64_t>(rank));
  return randomRows(rowTypeOf(o), tokens, o.hidden, 1.0f, rng);
}

// With -c 0 this rank's tokens only: a cheap pattern, the same on every rank (what runs before the
// check measured).
HostRows patternTokens(const Options& o, int tokens) {
  HostRows x(rowTypeOf(o), tokens, o.hidden);
  const size_t H = static_cast<size_t>(o.hidden);
  for (size_t i = 0; i < static_cast<size_t>(tokens) * H; ++i)
    x.set(static_cast<int64_t>(i / H), static_cast<int>(i % H),
          static_cast<float>((i * 2654435761u) % 1000) / 500.0f - 1.0f);
  return x;
}

// The group's communicators and what stays the same over the sweep.
struct Session {
  explicit Session(const Options& options) : o(options) {}
  const Options& o;
  int ranks = 1, me = 0;
  ncclComm_t nccl = nullptr;
  ncclMoeComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  RunDescription run;
};

void printHeader(const Session& s) {
  const Options& o = s.o;
  const RunDescription& run = s.run;
  const ncclMoeCommInfo_t& info = run.info;
  std::printf("# nccl-moe-perf %s: %d ranks on %s, %d experts, top-%d, hidden %d, %s dispatch, %s combine, %s layout, "
              "%d SMs per op, %d iterations after %d warm-up, check %s%s\n",
              run.version.c_str(), s.ranks, run.device.c_str(), o.experts, o.topk, o.hidden,
              run.dispatchType().c_str(), o.dtype.c_str(), o.expertMajor ? "expert-major" : "per-rank", o.sms, o.iters,
              o.warmup, o.check ? "on (-c 1)" : "off (-c 0)",
              o.zeroCopy ? ", zero-copy inputs (dispatch x unless FP8, combine x unless expert-major)" : "");
  std::printf("# buffer per rank %.1f MiB; the a2av baseline runs NCCL over sockets between the virtual nodes of a\n"
              "# one-GPU virtual cluster (not a network speed)\n",
              static_cast<double>(info.bufferBytes) / 1048576.0);
  std::string legend = columnLegend();
  for (size_t start = 0; start < legend.size();) {
    const size_t end = legend.find('\n', start);
    std::printf("#%s\n", legend.substr(start, end - start).c_str());
    start = end + 1;
  }
  if (run.twoHop()) {
    const int64_t dispatchRow = hybridDispatchRowBytes(o.hidden, rowTypeOf(o), o.fp8);
    const int64_t combineRow = hybridCombineRowBytes(o.hidden, rowTypeOf(o));
    std::printf("# virtual cluster: %d domains x %d ranks; network = NCCL over sockets between processes on one GPU: "
                "times are not network speeds\n"
                "# two-hop plan: network transfers in %d chunk(s) of up to %d rows\n"
                "# Bytes per rank = group total / %d ranks, 1 MB = 1e6 B, dispatch + combine. nvl, net: payload\n"
                "# (rows the host's two-hop plan needs: %lld B dispatch, %lld B combine) over NVLink, over the network.\n"
                "# wire: bytes a rank sends over the network per layout + dispatch + combine: the meta slots\n"
                "# ((M-1) x %zu B) and the rows the layout counted (blocking-mode layouts: transfers fitted to\n"
                "# the counts; net dispatch row %zu B, net combine row %zu B); mean over ranks. wire/pay = wire /\n"
                "# net. With a row budget (non-blocking) whole slots of %zu rows would travel instead.\n",
                info.domains, info.ranksPerDomain, info.netChunks, info.netChunkRows, s.ranks, (long long)dispatchRow,
                (long long)combineRow, info.metaSlotBytes, info.netDispatchRowBytes, info.netCombineRowBytes,
                info.netSlotRows);
  }
  std::printf("%s", headerLines(tableColumns(run)).c_str());
  std::fflush(stdout);
}

// One device-to-device copy of every rank's received bytes, by rank 0 alone while the others wait
// (what one GPU's memory can copy; the virtual ranks share that GPU): µs per copy.
double copyRoofline(const Session& s, size_t bytes) {
  const Options& o = s.o;
  DeviceBuffer source(bytes), destination(bytes);
  cudaEvent_t begin, end;
  checkCuda(cudaEventCreate(&begin), "cudaEventCreate");
  checkCuda(cudaEventCreate(&end), "cudaEventCreate");
  for (int i = 0; i < o.warmup + o.iters; ++i) {
    if (i == o.warmup) checkCuda(cudaEventRecord(begin, s.stream), "cudaEventRecord");
    checkCuda(cudaMemcpyAsync(destination.get(), source.get(), bytes, cudaMemcpyDeviceToDevice, s.stream),
              "cudaMemcpyAsync (copy roofline)");
  }
  checkCuda(cudaEventRecord(end, s.stream), "cudaEventRecord");
  checkCuda(cudaEventSynchronize(end), "cudaEventSynchronize");
  float ms = 0;
  checkCuda(cudaEventElapsedTime(&ms, begin, end), "cudaEventElapsedTime");
  cudaEventDestroy(begin);
  cudaEventDestroy(end);
  return static_cast<double>(ms) * 1000.0 / o.iters;
}

// The baseline (per-rank layout): permute into per-destination order, grouped NCCL send/recv; back
// with a sum. Times go into `m`.
void timeBaseline(const Session& s, harness::GroupTimer& timer, const GroupLayout& group, int tokens,
                  const harness::DeviceLayer& layer, Measurement* m) {
  const int R = s.ranks, me = s.me, H = s.o.hidden;
  const size_t rowBytes = layer.rowBytes();
  std::vector<int32_t> sendIndex;
  std::vector<int64_t> sendCount(R, 0), recvCount(R, 0);
  for (int dst = 0; dst < R; ++dst)
    for (int t = 0; t < tokens; ++t)
      for (const RowRef& ref : group.sentTo[me][t])
        if (ref.dstRank == dst) {
          sendIndex.push_back(t);
          ++sendCount[dst];
        }
  for (const RecvRow& r : group.recv[me].rows) ++recvCount[r.srcRank];
  // For the way back: token t's rows in the receive buffer of the reverse all-to-all.
  std::vector<int32_t> offsets(tokens + 1, 0), list(sendIndex.size());
  for (int32_t t : sendIndex) ++offsets[t + 1];
  for (int t = 0; t < tokens; ++t) offsets[t + 1] += offsets[t];
  std::vector<int32_t> fill(offsets.begin(), offsets.end() - 1);
  for (size_t i = 0; i < sendIndex.size(); ++i) list[fill[sendIndex[i]]++] = static_cast<int32_t>(i);
  DeviceBuffer dIndex(sendIndex.size() * 4), dOffsets(offsets.size() * 4), dList(list.size() * 4);
  dIndex.upload(sendIndex, s.stream);
  dOffsets.upload(offsets, s.stream);
  dList.upload(list, s.stream);
  const int64_t recvRows = group.recvRows(me);
  DeviceBuffer sendBuf(std::max<size_t>(sendIndex.size(), 1) * rowBytes),
      recvBuf(std::max<int64_t>(recvRows, 1) * rowBytes);
  const auto allToAllV = [&](const uint8_t* send, const std::vector<int64_t>& sends, uint8_t* recv,
                             const std::vector<int64_t>& recvs) {
    checkNccl(ncclGroupStart(), "ncclGroupStart");
    int64_t so = 0, ro = 0;
    for (int p = 0; p < R; ++p) {
      if (sends[p]) checkNccl(ncclSend(send + so * rowBytes, sends[p] * rowBytes, ncclUint8, p, s.nccl, s.stream), "ncclSend");
      if (recvs[p]) checkNccl(ncclRecv(recv + ro * rowBytes, recvs[p] * rowBytes, ncclUint8, p, s.nccl, s.stream), "ncclRecv");
      so += sends[p];
      ro += recvs[p];
    }
    checkNccl(ncclGroupEnd(), "ncclGroupEnd");
  };
  m->a2avDispatchUs = timer.time(s.o.warmup, s.o.iters, [&] {
    checkCuda(launchGatherRows(layer.tokens(), dIndex.get<int32_t>(), static_cast<int64_t>(sendIndex.size()),
                               rowBytes, sendBuf.get(), s.stream),
              "gather kernel");
    allToAllV(sendBuf.get<uint8_t>(), sendCount, recvBuf.get<uint8_t>(), recvCount);
  });
  const auto sum = s.o.fp32() ? launchSumRowsFp32 : launchSumRowsBf16;
  m->a2avCombineUs = timer.time(s.o.warmup, s.o.iters, [&] {
    allToAllV(recvBuf.get<uint8_t>(), recvCount, sendBuf.get<uint8_t>(), sendCount);
    checkCuda(sum(sendBuf.get(), dOffsets.get<int32_t>(), dList.get<int32_t>(), tokens, H, layer.combined(), s.stream),
              "sum kernel");
  });
}

// With --fp8 (bf16 input): the plain per-128 quantisation of this rank's T tokens, every rank at once,
// timed like the calls: what a dispatch that takes pre-quantised input costs on top.
double timeQuantize(const Session& s, harness::GroupTimer& timer, const harness::DeviceLayer& layer, int tokens) {
  const int H = s.o.hidden;
  DeviceBuffer codes(std::max<size_t>(static_cast<size_t>(tokens) * H, 1)),
      scales(std::max<size_t>(static_cast<size_t>(tokens) * fp8BlockCount(H) * sizeof(float), 4));
  return timer.time(s.o.warmup, s.o.iters, [&] {
    checkCuda(launchQuantizeRowsPer128(layer.tokens(), tokens, H, codes.get<uint8_t>(), scales.get<float>(), s.stream),
              "quantisation kernel");
  });
}

// Dispatch's host time and the timed calls; combine's timed calls; a pass with phase timing on.
void timeCalls(const Session& s, harness::GroupReduce& group, harness::GroupTimer& timer, harness::DeviceLayer& layer,
               Measurement* m) {
  const Options& o = s.o;
  std::vector<double> hostSeconds;
  int calls = 0;
  m->dispatchUs = timer.time(o.warmup, o.iters, [&] {
    const auto begin = std::chrono::steady_clock::now();
    layer.dispatch();
    // Host time of the enqueue alone, timed iterations only (the first calls load kernels).
    if (calls++ >= o.warmup)
      hostSeconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
  });
  double hostTotal = 0;
  for (double seconds : hostSeconds) hostTotal += seconds;
  std::sort(hostSeconds.begin(), hostSeconds.end());
  m->hostUs = group.max(hostSeconds[hostSeconds.size() / 2] * 1e6);
  m->hostMeanUs = group.max(hostTotal * 1e6 / static_cast<double>(hostSeconds.size()));
  m->combineUs = timer.time(o.warmup, o.iters, [&] { layer.combine(); });
  m->layoutUs = timer.time(o.warmup, o.iters, [&] { layer.createLayout(); });
  m->layoutDispatchUs = timer.time(o.warmup, o.iters, [&] {
    layer.createLayout();
    layer.dispatch();
  });
  // Phases: a pass of its own with phase timing on (events add host work to every call).
  checkMoe(ncclMoeCommSetPhaseTiming(s.comm, 1), "ncclMoeCommSetPhaseTiming", s.comm);
  PhaseAverage phases;
  group.barrier();
  for (int i = 0; i < o.warmup + o.iters; ++i) {
    layer.createLayout();  // a blocking-mode handle: its counts are read before a dispatch
    layer.dispatch();
    layer.combine();
    ncclMoePhaseTimes_t times = NCCL_MOE_PHASE_TIMES_INITIALIZER;
    checkMoe(ncclMoeCommGetPhaseTimes(s.comm, &times), "ncclMoeCommGetPhaseTimes", s.comm);
    if (i >= o.warmup) phases.add(times);
  }
  checkMoe(ncclMoeCommSetPhaseTiming(s.comm, 0), "ncclMoeCommSetPhaseTiming", s.comm);
  for (int p = 0; p < ncclMoeNumPhases; ++p) {
    m->phaseStartUs[p] = group.max(phases.startUs(p));
    m->phaseEndUs[p] = group.max(phases.endUs(p));
  }
}

// -c 1: this rank's dispatch rows (and FP8 scales) and combine output against the reference,
// element by element; wrong elements summed over the ranks.
void checkOutputs(const Session& s, harness::GroupReduce& group, const harness::DeviceLayer& layer,
                  const harness::ReferenceLayer& reference, Measurement* m) {
  const harness::Mismatch dispatched = harness::compareDispatch(layer.downloadDispatch(), reference.dispatched[s.me]);
  const harness::Mismatch combined =
      harness::compareRows("combine output", layer.downloadCombined(), reference.combined[s.me]);
  for (const harness::Mismatch* mismatch : {&dispatched, &combined})
    if (!mismatch->ok())
      std::fprintf(stderr, "nccl-moe-perf: rank %d, %d tokens: %lld of %lld elements wrong; first %s\n", s.me,
                   m->tokens, (long long)mismatch->wrong, (long long)mismatch->compared, mismatch->first.c_str());
  m->dispatchWrong = group.sum(dispatched.wrong);
  m->combineWrong = group.sum(combined.wrong);
}

Measurement measure(const Session& s, harness::GroupReduce& group, harness::GroupTimer& timer, int T) {
  const Options& o = s.o;
  const int R = s.ranks, me = s.me;
  const ncclMoeCommInfo_t& info = s.run.info;
  // The same routing on every rank (seeded), so each knows the group layout for the baseline.
  std::mt19937_64 rng(o.seed + T);
  RoutingRecipe recipe;
  recipe.numTokens = T;
  recipe.topk = o.topk;
  recipe.experts = o.experts;
  harness::GroupInputs in;
  in.shape = GroupShape{R, o.experts, o.hidden, o.maxTokens, o.topk};
  for (int r = 0; r < R; ++r) in.routings.push_back(randomTopkRouting(recipe, rng));
  const LayoutOptions layoutOptions{o.expertMajor ? OutputLayout::kExpertMajor : OutputLayout::kPerRank, 0, -1};
  // Several domains: the two-hop plan (its layout is buildGroupLayout's) and what it moves where.
  HybridPlan plan;
  GroupLayout singleLayout;
  const bool twoHop = s.run.twoHop();
  const Status built = twoHop ? buildHybridPlan(in.shape, info.ranksPerDomain, in.routings, layoutOptions, &plan)
                              : buildGroupLayout(in.shape, in.routings, layoutOptions, &singleLayout);
  if (!built.isOk()) throw std::runtime_error(built.message());
  const GroupLayout& groupLayout = twoHop ? plan.layout : singleLayout;

  harness::ReferenceLayer reference;
  if (o.check) {
    for (int r = 0; r < R; ++r) in.x.push_back(checkedTokens(o, T, r));
    const harness::LayerSettings settings{layoutOptions, Fp8Options{o.fp8, false}, CombineOrder{info.ranksPerDomain}};
    if (Status status = harness::runReferenceLayer(in, settings, &reference); !status.isOk())
      throw std::runtime_error("the CPU reference: " + status.message());
  }
  const HostRows mine = o.check ? in.x[me] : patternTokens(o, T);

  harness::LayerShape shape;
  shape.hidden = o.hidden;
  shape.topk = o.topk;
  shape.localExperts = o.experts / R;
  shape.rowType = rowTypeOf(o);
  shape.fp8 = o.fp8;
  shape.layout = layoutOptions;
  harness::DeviceLayer layer(s.comm, s.stream, shape);
  layer.setInputs(in.routings[me], mine);
  layer.createLayout();
  if (layer.rows() != groupLayout.recvRows(me))
    throw std::runtime_error("rank " + std::to_string(me) + " receives " + std::to_string(layer.rows()) +
                             " rows, the reference says " + std::to_string(groupLayout.recvRows(me)));
  if (o.check)
    layer.setExpertOutput(reference.expertOut[me]);
  else
    layer.zeroExpertOutput();
  if (o.zeroCopy) {
    // The producers of x and of the expert outputs write straight into the input areas; the copies
    // here stand for them and are not timed.
    ncclMoeInputBuffers_t areas = NCCL_MOE_INPUT_BUFFERS_INITIALIZER;
    checkMoe(ncclMoeCommGetInputBuffers(s.comm, &areas), "ncclMoeCommGetInputBuffers", s.comm);
    if (areas.dispatchX) {
      checkCuda(cudaMemcpyAsync(areas.dispatchX, layer.tokens(), layer.tokenBytes(), cudaMemcpyDeviceToDevice, s.stream),
                "cudaMemcpyAsync");
      layer.setDispatchInput(areas.dispatchX);
    }
    if (!o.expertMajor) {
      checkCuda(cudaMemcpyAsync(areas.combineX, layer.expertOutput(), layer.expertOutputBytes(),
                                cudaMemcpyDeviceToDevice, s.stream),
                "cudaMemcpyAsync");
      layer.setCombineInput(areas.combineX);
    }
    checkCuda(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize");
  }

  Measurement m;
  m.tokens = T;
  m.twoHop = twoHop;
  if (twoHop) {
    const int64_t dispatchRow = hybridDispatchRowBytes(o.hidden, rowTypeOf(o), o.fp8);
    const int64_t combineRow = hybridCombineRowBytes(o.hidden, rowTypeOf(o));
    m.traffic = twoHopBytes(predictTraffic(plan, dispatchRow, combineRow), dispatchRow, combineRow, info);
  }
  timeCalls(s, group, timer, layer, &m);
  if (o.check) checkOutputs(s, group, layer, reference, &m);

  const double groupRows = group.sum(static_cast<double>(layer.rows()));
  m.rowsPerRank = groupRows / R;
  m.remoteRowsPerRank = static_cast<double>(summarizeTraffic(groupLayout).rowsToOtherRanks) / R;
  group.barrier();
  const double copyUs = me == 0 ? copyRoofline(s, static_cast<size_t>(groupRows) * s.run.dispatchRowBytes) : 0.0;
  m.copyUs = group.max(copyUs);
  if (!o.expertMajor) timeBaseline(s, timer, groupLayout, T, layer, &m);
  if (o.fp8 && !o.fp32()) m.quantizeUs = timeQuantize(s, timer, layer, T);
  return m;
}

}  // namespace

int runSweep(const Options& o, const RankLayout& layout, tools::OutputFile& json) {
  Session s(o);
  s.ranks = layout.size;
  s.me = layout.rank;
  const RankBootstrap setup = bootstrapRank(layout);  // this rank's GPU and the job's unique id
  checkNccl(ncclCommInitRank(&s.nccl, layout.size, setup.uniqueId, layout.rank), "ncclCommInitRank");
  checkCuda(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreate");

  ncclMoeConfig_t config = NCCL_MOE_CONFIG_INITIALIZER;
  config.numExperts = o.experts;
  config.hiddenSize = o.hidden;
  config.maxTokensPerRank = o.maxTokens;
  config.maxTopk = o.topk;
  config.dataType = o.fp32() ? ncclFloat32 : ncclBfloat16;
  config.fp8Dispatch = o.fp8;
  config.dispatchSms = o.sms;
  config.combineSms = o.sms;
  checkMoe(ncclMoeCommCreate(s.nccl, &config, &s.comm), "ncclMoeCommCreate", nullptr);

  RunDescription& run = s.run;
  checkMoe(ncclMoeCommGetInfo(s.comm, &run.info), "ncclMoeCommGetInfo", s.comm);
  cudaDeviceProp prop;
  checkCuda(cudaGetDeviceProperties(&prop, setup.device), "cudaGetDeviceProperties");
  static_cast<RunBasics&>(run) = runBasicsOf(o, s.ranks, prop.name, tools::versionWithLoadedNccl());
  run.dtype = o.dtype;
  run.fp8 = o.fp8;
  run.expertMajor = o.expertMajor;
  run.zeroCopy = o.zeroCopy;
  const size_t rowBytes = static_cast<size_t>(o.hidden) * (o.fp32() ? 4 : 2);
  run.dispatchRowBytes = o.fp8 ? static_cast<size_t>(o.hidden) + fp8BlockCount(o.hidden) * 4 : rowBytes;
  run.combineRowBytes = rowBytes;
  if (s.me == 0) printHeader(s);

  std::vector<Measurement> table;
  {
    harness::GroupReduce group(s.nccl, s.stream);
    harness::GroupTimer timer(group, s.stream);
    run.emptyKernelUs = timer.time(o.warmup, o.iters, [&] { checkCuda(launchEmptyKernel(s.stream), "launch (empty kernel)"); });
    const std::vector<Column> columns = tableColumns(run);
    for (int T : tokenSweep(o)) {
      const Measurement m = measure(s, group, timer, T);
      table.push_back(m);
      if (s.me != 0) continue;
      std::printf("%s", rowLine(columns, rowCells(run, m)).c_str());
      std::printf("#   phases, us from the call's start (mean of %d calls, slowest rank): %s\n", o.iters,
                  describePhases([&](int p) { return m.phaseStartUs[p]; }, [&](int p) { return m.phaseEndUs[p]; })
                      .c_str());
      std::printf("#   uncached: layout with its counts read %.1f us, layout + dispatch %.1f us (slowest rank, mean of "
                  "%d calls)\n",
                  m.layoutUs, m.layoutDispatchUs, o.iters);
      if (m.quantizeUs)
        std::printf("#   a plain per-128 FP8 quantisation of each rank's tokens (what a dispatch of pre-quantised "
                    "input needs first): %.2f us\n",
                    *m.quantizeUs);
      std::fflush(stdout);
    }
  }
  if (s.me == 0) {
    std::printf("%s", summaryLines(run, table).c_str());
    std::fflush(stdout);
  }
  const std::string text = json ? perfJsonText(run, table) : "";
  checkMoe(ncclMoeCommDestroy(s.comm), "ncclMoeCommDestroy", nullptr);
  return endRun(s.nccl, s.stream, json, text, totalWrong(table));
}

int endRun(ncclComm_t nccl, cudaStream_t stream, tools::OutputFile& json, const std::string& text,
           std::optional<int64_t> wrong) {
  checkNccl(ncclCommDestroy(nccl), "ncclCommDestroy");
  cudaStreamDestroy(stream);
  // After the teardown, which the other ranks take part in: a failed write ends only this rank.
  writeJson(json, text);
  return wrong && *wrong > 0 ? 1 : 0;
}

}  // namespace nccl_moe::perf
