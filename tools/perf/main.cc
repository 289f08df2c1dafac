// nccl-moe-perf: dispatch and combine bandwidth, nccl-tests style. One process per rank, started
// by nccl-moe-run (e.g. `nccl-moe-run -np 8 --mps nccl-moe-perf -b 128 -e 4096`), mpirun, srun or
// torchrun (the rank bootstrap, nccl_moe_bootstrap.h, reads whichever; docs/launching.md). In the same run
// it measures the baselines: a device-to-device copy of the same bytes on every rank at once (the
// roofline of a one-GPU virtual cluster) and the path users have today, NCCL all-to-all-v with a
// permutation kernel (per-rank layout). Rank 0 prints the table and optionally writes JSON.
// With several NVLink domains (`nccl-moe-run --nodes M`) it also reports, from the host's two-hop
// plan of the same routings, the payload bytes per rank over NVLink and over the network, and the
// bytes the network phase puts on the wire (tools/perf/two_hop_bytes.h).
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "nccl_moe.h"
#include "nccl_moe_bootstrap.h"
#include "reference/hybrid_plan.h"
#include "misc/env.h"
#include "reference/layout.h"
#include "reference/random_routing.h"
#include "tools/common/flags.h"
#include "tools/common/output_file.h"
#include "tools/common/tool_main.h"
#include "tools/perf/baseline_kernels.h"
#include "tools/perf/phase_report.h"
#include "tools/perf/two_hop_bytes.h"

namespace nccl_moe::perf {
namespace {

struct Options {
  int minTokens = 128;
  int maxTokens = 4096;
  int factor = 2;
  int iters = 20;
  int warmup = 5;
  int experts = 256;
  int topk = 8;
  int hidden = 7168;
  bool fp8 = false;
  bool expertMajor = false;
  bool zeroCopy = false;  // inputs in the communicator's input areas (ncclMoeCommGetInputBuffers)
  int sms = 24;
  uint64_t seed = 1;
  std::string json;
};

constexpr int kMaxTokensPerRank = 1 << 20;

constexpr const char* kAbout =
    "Dispatch and combine bandwidth over the ranks a launcher starts (nccl-moe-run, mpirun, srun,\n"
    "torchrun: see docs/launching.md), from -b to -e tokens per rank\n"
    "(times -f each step), with the baselines: a device-to-device copy of the same bytes and NCCL\n"
    "all-to-all-v with a permutation kernel. Rank 0 prints the table.\n"
    "Exit status: 0 done, 1 a failure in the run, 2 a bad flag or environment (before any GPU work).\n";

// The build's version and the NCCL this process loaded.
std::string versionOfBuild() {
  int nccl = 0;
  const std::string ncclText = ncclGetVersion(&nccl) == ncclSuccess ? tools::versionText(nccl) : "unknown";
  return tools::versionText(NCCL_MOE_VERSION_CODE) + " (NCCL " + ncclText + ")";
}

// kAbout, then the library's environment variables (the one table of src/misc/env.h).
std::string aboutWithEnvironment() {
  std::string text = std::string(kAbout) + "Environment (NCCL_MOE_*, read by the library):\n";
  for (const std::string& line : paramTable()) text += "  " + line + "\n";
  return text;
}

tools::ParseOutcome parseOptions(int argc, char** argv, Options* o) {
  tools::FlagSet flags({"nccl-moe-perf", "nccl-moe-run -np R [--mps] nccl-moe-perf [flags]", aboutWithEnvironment(),
                        versionOfBuild()});
  flags.count("-b", "smallest tokens per rank", &o->minTokens, 1, kMaxTokensPerRank);
  flags.count("-e", "largest tokens per rank, at least -b", &o->maxTokens, 1, kMaxTokensPerRank);
  flags.integer("-f", "tokens multiplied by N each step, at least 2 when -b < -e", &o->factor, 1, 1024);
  flags.integer("-n", "timed iterations", &o->iters, 1, 1000000);
  flags.integer("-w", "warm-up iterations", &o->warmup, 0, 1000000);
  flags.integer("--experts", "experts in all, a multiple of the ranks", &o->experts, 1, 1 << 16);
  flags.integer("--topk", "experts per token, at most --experts", &o->topk, 1, 1024);
  flags.integer("--hidden", "elements per token row", &o->hidden, 1, 1 << 16);
  flags.toggle("--fp8", "FP8 dispatch (bf16 otherwise)", &o->fp8);
  flags.toggle("--expert-major", "HybridEP layout (no all-to-all-v baseline)", &o->expertMajor);
  flags.toggle("--zero-copy", "x and the expert outputs written into the communicator's input areas beforehand",
               &o->zeroCopy);
  flags.integer("--sms", "SM budget of dispatch and of combine", &o->sms, 1, 1024);
  flags.integer("--seed", "seed of the routings", &o->seed, 0, std::numeric_limits<long long>::max());
  flags.text("--json", "FILE", "also write the table as JSON to FILE (by rank 0)", &o->json);
  return flags.parse(argc, argv);
}

// The constraints between flags.
void checkOptions(const Options& o) {
  if (o.minTokens > o.maxTokens)
    throw tools::UsageError("-b " + std::to_string(o.minTokens) + " is more than -e " + std::to_string(o.maxTokens));
  // The sweep multiplies the token count by the factor: 1 would never reach -e.
  if (o.minTokens < o.maxTokens && o.factor < 2)
    throw tools::UsageError("-f " + std::to_string(o.factor) + " must be at least 2 to step from -b " +
                            std::to_string(o.minTokens) + " to -e " + std::to_string(o.maxTokens));
  if (o.topk > o.experts)
    throw tools::UsageError("--topk " + std::to_string(o.topk) + " is more than --experts " +
                            std::to_string(o.experts) + " (a token picks distinct experts)");
}

// What the flags need of the group the launcher started, checked before any GPU work.
void checkAgainstGroup(const Options& o, const RankLayout& layout) {
  if (o.experts % layout.size != 0)
    throw tools::UsageError("--experts " + std::to_string(o.experts) + " is not a multiple of the " +
                            std::to_string(layout.size) + " ranks (every rank holds as many experts)");
}

// The launcher's variables, read before any GPU or network work: a bad one is a usage error.
RankLayout readLayout() {
  try {
    return readRankLayout();
  } catch (const BootstrapError& e) {
    throw tools::UsageError(e.what());
  }
}

// Rank 0 writes the file; the other ranks check the path too, so that every rank stops at once.
tools::OutputFile openJson(const Options& o, const RankLayout& layout) {
  if (o.json.empty()) return {};
  if (layout.rank != 0) {
    tools::checkWritable("--json", o.json);
    return {};
  }
  return tools::OutputFile::create("--json", o.json);
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "nccl-moe-perf: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}
void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) {
    std::fprintf(stderr, "nccl-moe-perf: %s: %s\n", what, ncclGetErrorString(r));
    std::exit(1);
  }
}
void checkMoe(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) {
    std::fprintf(stderr, "nccl-moe-perf: %s: %s\n", what, ncclMoeGetLastError(nullptr));
    std::exit(1);
  }
}

class Device {
 public:
  explicit Device(size_t bytes) { check(cudaMalloc(&p_, bytes ? bytes : 16), "cudaMalloc"); }
  ~Device() { cudaFree(p_); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  template <class T = void>
  T* get() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
};

template <class T>
void upload(Device& d, const std::vector<T>& v) {
  if (!v.empty()) check(cudaMemcpy(d.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
}

// Times `body` over the group: all ranks start together; the slowest rank's time per iteration (µs).
class Timer {
 public:
  Timer(ncclComm_t comm, cudaStream_t stream) : comm_(comm), stream_(stream) {
    check(cudaEventCreate(&start_), "cudaEventCreate");
    check(cudaEventCreate(&stop_), "cudaEventCreate");
    check(cudaMalloc(&scratch_, sizeof(float)), "cudaMalloc");
  }
  ~Timer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
    cudaFree(scratch_);
  }
  template <class Body>
  double time(int warmup, int iters, Body&& body) {
    for (int i = 0; i < warmup; ++i) body();
    barrier();
    check(cudaEventRecord(start_, stream_), "cudaEventRecord");
    for (int i = 0; i < iters; ++i) body();
    check(cudaEventRecord(stop_, stream_), "cudaEventRecord");
    check(cudaEventSynchronize(stop_), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
    return maxOverRanks(ms * 1000.0f / iters);
  }
  float maxOverRanks(float value) { return reduce(value, ncclMax); }
  double sumOverRanks(double value) { return reduce(static_cast<float>(value), ncclSum); }
  void barrier() {
    check(ncclAllReduce(scratch_, scratch_, 1, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce");
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }

 private:
  // Every copy on the timer's stream: the all-reduce runs there (a non-blocking stream), and a
  // cudaMemcpy on the legacy stream would not wait for it (it read the rank's own or a stale value).
  float reduce(float value, ncclRedOp_t op) {
    check(cudaMemcpyAsync(scratch_, &value, sizeof(float), cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
    check(ncclAllReduce(scratch_, scratch_, 1, ncclFloat32, op, comm_, stream_), "ncclAllReduce");
    check(cudaMemcpyAsync(&value, scratch_, sizeof(float), cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync");
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    return value;
  }

  ncclComm_t comm_;
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  float* scratch_ = nullptr;
};

struct Row {
  int tokens;
  double rowsPerRank;      // received rows, average over ranks
  double dispatchUs, combineUs, copyUs, a2avDispatchUs, a2avCombineUs;
  double hostUs;      // host time of one ncclMoeDispatch: median of the timed calls, slowest rank
  double hostMeanUs;  // the mean of the same calls (one preempted call of a process weighs in)
  double dispatchBytes;    // all ranks, received
  double combineBytes;     // all ranks, sent back (bf16/fp32 rows)
  double bufferBytes;      // per rank
  bool twoHop;             // several domains: `traffic` is set
  TwoHopBytes traffic;     // per rank
  // Phase spans (µs from the call's start) of layout, dispatch and combine: mean over the timed
  // calls of a separate pass with phase timing on, the slowest rank's start and end.
  std::array<double, ncclMoeNumPhases> phaseStartUs{}, phaseEndUs{};
};

// The multi-node columns: MB (1e6 bytes) per rank, "-" with one domain.
std::string twoHopColumns(const Row& r) {
  char text[64];
  if (!r.twoHop) {
    std::snprintf(text, sizeof text, " | %8s %8s %8s %8s", "-", "-", "-", "-");
    return text;
  }
  // The library fits every transfer to the counted rows when every rank's layout is in blocking
  // mode (nccl-moe-perf's are): whole slots only carry the layout's meta.
  const double wire = r.traffic.wireCountedRows;
  const double ratio = wireOverPayload(wire, r.traffic.networkPayload);
  char ratioText[16];
  if (ratio > 0) std::snprintf(ratioText, sizeof ratioText, "%.2f", ratio);
  else std::snprintf(ratioText, sizeof ratioText, "-");
  std::snprintf(text, sizeof text, " | %8.2f %8.2f %8.2f %8s", r.traffic.nvlinkPayload / 1e6,
                r.traffic.networkPayload / 1e6, wire / 1e6, ratioText);
  return text;
}

int run(const Options& o, const RankLayout& layout, tools::OutputFile& json) {
  const RankBootstrap setup = bootstrapRank(layout);  // this rank's GPU and the job's unique id
  ncclComm_t nccl;
  check(ncclCommInitRank(&nccl, layout.size, setup.uniqueId, layout.rank), "ncclCommInitRank");
  cudaStream_t stream;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  const int R = layout.size, me = layout.rank, H = o.hidden;

  ncclMoeConfig_t config = NCCL_MOE_CONFIG_INITIALIZER;
  config.numExperts = o.experts;
  config.hiddenSize = H;
  config.maxTokensPerRank = o.maxTokens;
  config.maxTopk = o.topk;
  config.fp8Dispatch = o.fp8;
  config.dispatchSms = o.sms;
  config.combineSms = o.sms;
  ncclMoeComm_t comm;
  checkMoe(ncclMoeCommCreate(nccl, &config, &comm), "ncclMoeCommCreate");
  ncclMoeCommInfo_t info = NCCL_MOE_COMM_INFO_INITIALIZER;
  checkMoe(ncclMoeCommGetInfo(comm, &info), "ncclMoeCommGetInfo");
  const double bufferBytes = static_cast<double>(info.bufferBytes);
  const int M = info.domains, D = info.ranksPerDomain;
  const bool twoHop = M > 1;
  // Payload row sizes of the two-hop plan: the dispatch row as sent (FP8: codes + scales), bf16 back.
  const int64_t planDispatchRowBytes = hybridDispatchRowBytes(H, ElementType::kBf16, o.fp8);
  const int64_t planCombineRowBytes = hybridCombineRowBytes(H, ElementType::kBf16);

  Timer timer(nccl, stream);
  const size_t rowBytes = static_cast<size_t>(H) * 2;
  const size_t dispatchRowBytes = o.fp8 ? H + fp8BlockCount(H) * 4 : rowBytes;
  std::vector<Row> table;
  ncclMoeHandle_t handle = nullptr;
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, setup.device), "cudaGetDeviceProperties");
  if (me == 0) {
    std::printf("# nccl-moe-perf: %d ranks on %s, %d experts, top-%d, hidden %d, %s dispatch, bf16 combine, %s layout, "
                "%d SMs per op, %d iterations%s\n",
                R, prop.name, o.experts, o.topk, H, o.fp8 ? "FP8" : "bf16", o.expertMajor ? "expert-major" : "per-rank",
                o.sms, o.iters,
                o.zeroCopy ? ", zero-copy inputs (dispatch x unless FP8, combine x unless expert-major)" : "");
    std::printf("# buffer per rank %.1f MiB. Bandwidths: bytes of received rows over all ranks / time; copy = one D2D copy\n"
                "# of the same bytes (the one-GPU roofline); a2av = permute + NCCL all-to-all-v (sockets between the\n"
                "# virtual nodes: not a network speed). Times are the slowest rank's; host_us = median host time of\n"
                "# one ncclMoeDispatch call (enqueue only).\n",
                bufferBytes / 1048576.0);
    if (twoHop) {
      std::printf("# virtual cluster: %d domains x %d ranks; network = NCCL over sockets between processes on one GPU: "
                  "times are not network speeds\n"
                  "# two-hop plan: %d domains, %d ranks per domain; network transfers in %d chunk(s) of up to %d rows\n"
                  "# Bytes per rank = group total / %d ranks, 1 MB = 1e6 B, dispatch + combine. nvl_MB, net_MB: payload\n"
                  "# (rows the host's two-hop plan needs: %lld B dispatch, %lld B combine) over NVLink, over the network.\n"
                  "# wire_MB: bytes a rank sends over the network per layout + dispatch + combine: the meta slots\n"
                  "# ((M-1) x %zu B) and the rows the layout counted (blocking-mode layouts: transfers fitted to\n"
                  "# the counts; net dispatch row %zu B, net combine row %zu B); mean over ranks. wire/pay = wire_MB /\n"
                  "# net_MB. With a row budget (non-blocking) whole slots of %zu rows would travel instead.\n",
                  M, D, M, D, info.netChunks, info.netChunkRows, R, (long long)planDispatchRowBytes,
                  (long long)planCombineRowBytes, info.metaSlotBytes, info.netDispatchRowBytes,
                  info.netCombineRowBytes, info.netSlotRows);
    }
    std::printf("#%7s %9s | %9s %9s %6s | %9s %9s %6s | %9s | %9s %9s | %7s | %8s %8s %8s %8s\n", "tokens",
                "rows/rank", "disp_us", "disp_GB/s", "%copy", "comb_us", "comb_GB/s", "%copy", "copy_GB/s", "a2av_d_us",
                "a2av_c_us", "host_us", "nvl_MB", "net_MB", "wire_MB", "wire/pay");
    std::fflush(stdout);
  }
  for (int T = o.minTokens; T <= o.maxTokens; T *= o.factor) {
    // The same routing on every rank (seeded), so each knows the group layout for the baseline.
    std::mt19937_64 rng(o.seed + T);
    RoutingRecipe recipe;
    recipe.numTokens = T;
    recipe.topk = o.topk;
    recipe.experts = o.experts;
    std::vector<RankRouting> routings;
    for (int r = 0; r < R; ++r) routings.push_back(randomTopkRouting(recipe, rng));
    GroupShape shape{R, o.experts, H, o.maxTokens, o.topk};
    LayoutOptions layoutOptions{o.expertMajor ? OutputLayout::kExpertMajor : OutputLayout::kPerRank, 0, -1};
    // Several domains: the two-hop plan (its layout is buildGroupLayout's) and what it moves where.
    HybridPlan plan;
    GroupLayout singleLayout;
    const Status built = twoHop ? buildHybridPlan(shape, D, routings, layoutOptions, &plan)
                                : buildGroupLayout(shape, routings, layoutOptions, &singleLayout);
    if (!built.isOk()) {
      std::fprintf(stderr, "nccl-moe-perf: %s\n", built.message().c_str());
      return 1;
    }
    const GroupLayout& group = twoHop ? plan.layout : singleLayout;
    const int64_t recvRows = group.recvRows(me);

    const size_t slots = static_cast<size_t>(T) * o.topk;  // T * K * 8 bytes can pass INT_MAX
    Device x(T * rowBytes), idx(slots * 8), probs(slots * 4);
    std::vector<uint16_t> xs(static_cast<size_t>(T) * H);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = floatToBf16(static_cast<float>((i * 2654435761u) % 1000) / 500.0f - 1.0f);
    upload(x, xs);
    upload(idx, routings[me].topkIdx);
    upload(probs, routings[me].topkProbs);
    ncclMoeRouting_t routing = NCCL_MOE_ROUTING_INITIALIZER;
    routing.numTokens = T;
    routing.topk = o.topk;
    routing.topkIdx = idx.get<int64_t>();
    routing.topkProbs = probs.get<float>();
    ncclMoeLayoutOptions_t options = NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER;
    options.layout = o.expertMajor ? NCCL_MOE_LAYOUT_EXPERT_MAJOR : NCCL_MOE_LAYOUT_PER_RANK;
    checkMoe(ncclMoeLayoutCreate(comm, &routing, &options, &handle, stream), "ncclMoeLayoutCreate");
    int64_t rows = 0;
    checkMoe(ncclMoeHandleGetCounts(handle, &rows, nullptr, nullptr), "ncclMoeHandleGetCounts");
    if (rows != recvRows) {
      std::fprintf(stderr, "nccl-moe-perf: rank %d receives %lld rows, the reference says %lld\n", me,
                   (long long)rows, (long long)recvRows);
      return 1;
    }
    Device recvX(std::max<int64_t>(rows, 1) * dispatchRowBytes), recvScales(std::max<int64_t>(rows, 1) * fp8BlockCount(H) * 4),
        y(std::max<int64_t>(rows, 1) * rowBytes), out(T * rowBytes);
    ncclMoeDispatchArgs_t d = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
    d.x = x.get();
    d.recvRows = rows;
    d.recvX = recvX.get();
    d.recvScales = o.fp8 ? recvScales.get<float>() : nullptr;
    ncclMoeCombineArgs_t c = NCCL_MOE_COMBINE_ARGS_INITIALIZER;
    c.x = y.get();
    c.rows = rows;
    c.out = out.get();
    check(cudaMemset(y.get(), 0, rows * rowBytes), "cudaMemset");
    if (o.zeroCopy) {
      // The producers of x and of the expert outputs write straight into the input areas; the copies
      // here stand for them and are not timed.
      ncclMoeInputBuffers_t areas = NCCL_MOE_INPUT_BUFFERS_INITIALIZER;
      checkMoe(ncclMoeCommGetInputBuffers(comm, &areas), "ncclMoeCommGetInputBuffers");
      if (areas.dispatchX) {
        check(cudaMemcpy(areas.dispatchX, x.get(), T * rowBytes, cudaMemcpyDeviceToDevice), "cudaMemcpy");
        d.x = areas.dispatchX;
      }
      if (!o.expertMajor) {
        check(cudaMemcpy(areas.combineX, y.get(), rows * rowBytes, cudaMemcpyDeviceToDevice), "cudaMemcpy");
        c.x = areas.combineX;
      }
    }

    Row row{};
    row.tokens = T;
    row.bufferBytes = bufferBytes;
    row.twoHop = twoHop;
    if (twoHop) {
      const HybridTraffic traffic = predictTraffic(plan, planDispatchRowBytes, planCombineRowBytes);
      row.traffic = twoHopBytes(traffic, planDispatchRowBytes, planCombineRowBytes, info);
    }
    std::vector<double> hostSeconds;
    int calls = 0;
    row.dispatchUs = timer.time(o.warmup, o.iters, [&] {
      const auto begin = std::chrono::steady_clock::now();
      checkMoe(ncclMoeDispatch(comm, handle, &d, stream), "ncclMoeDispatch");
      // Host time of the enqueue alone, timed iterations only (the first calls load kernels).
      if (calls++ >= o.warmup)
        hostSeconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
    });
    double hostTotal = 0;
    for (double seconds : hostSeconds) hostTotal += seconds;
    std::sort(hostSeconds.begin(), hostSeconds.end());
    row.hostUs = timer.maxOverRanks(static_cast<float>(hostSeconds[hostSeconds.size() / 2] * 1e6));
    row.hostMeanUs = timer.maxOverRanks(static_cast<float>(hostTotal * 1e6 / hostSeconds.size()));
    row.combineUs = timer.time(o.warmup, o.iters, [&] { checkMoe(ncclMoeCombine(comm, handle, &c, stream), "ncclMoeCombine"); });
    // Phases: a pass of its own with phase timing on (events add host work to every call).
    {
      checkMoe(ncclMoeCommSetPhaseTiming(comm, 1), "ncclMoeCommSetPhaseTiming");
      PhaseAverage phases;
      timer.barrier();
      for (int i = 0; i < o.warmup + o.iters; ++i) {
        checkMoe(ncclMoeLayoutCreate(comm, &routing, &options, &handle, stream), "ncclMoeLayoutCreate");
        int64_t again = 0;  // a blocking-mode handle: its counts are read before a dispatch
        checkMoe(ncclMoeHandleGetCounts(handle, &again, nullptr, nullptr), "ncclMoeHandleGetCounts");
        checkMoe(ncclMoeDispatch(comm, handle, &d, stream), "ncclMoeDispatch");
        checkMoe(ncclMoeCombine(comm, handle, &c, stream), "ncclMoeCombine");
        ncclMoePhaseTimes_t times = NCCL_MOE_PHASE_TIMES_INITIALIZER;
        checkMoe(ncclMoeCommGetPhaseTimes(comm, &times), "ncclMoeCommGetPhaseTimes");
        if (i >= o.warmup) phases.add(times);
      }
      checkMoe(ncclMoeCommSetPhaseTiming(comm, 0), "ncclMoeCommSetPhaseTiming");
      for (int p = 0; p < ncclMoeNumPhases; ++p) {
        row.phaseStartUs[p] = timer.maxOverRanks(static_cast<float>(phases.startUs(p)));
        row.phaseEndUs[p] = timer.maxOverRanks(static_cast<float>(phases.endUs(p)));
      }
    }
    // Roofline: one device-to-device copy of every rank's received bytes, by rank 0 alone while the
    // others wait (what one GPU's memory can copy; the virtual ranks share that GPU).
    const double groupRows = timer.sumOverRanks(static_cast<double>(rows));
    timer.barrier();
    float copyUs = 0.0f;
    if (me == 0) {
      const size_t bytes = static_cast<size_t>(groupRows) * dispatchRowBytes;
      Device copySrc(bytes), copyDst(bytes);
      cudaEvent_t begin, end;
      check(cudaEventCreate(&begin), "cudaEventCreate");
      check(cudaEventCreate(&end), "cudaEventCreate");
      for (int i = 0; i < o.warmup + o.iters; ++i) {
        if (i == o.warmup) check(cudaEventRecord(begin, stream), "cudaEventRecord");
        check(cudaMemcpyAsync(copyDst.get(), copySrc.get(), bytes, cudaMemcpyDeviceToDevice, stream), "copy");
      }
      check(cudaEventRecord(end, stream), "cudaEventRecord");
      check(cudaEventSynchronize(end), "cudaEventSynchronize");
      float ms = 0;
      check(cudaEventElapsedTime(&ms, begin, end), "cudaEventElapsedTime");
      copyUs = ms * 1000.0f / o.iters;
      cudaEventDestroy(begin);
      cudaEventDestroy(end);
    }
    row.copyUs = timer.maxOverRanks(copyUs);

    if (!o.expertMajor) {
      // Baseline: permute into per-destination order, grouped NCCL send/recv; back with a sum.
      std::vector<int32_t> sendIndex;
      std::vector<int64_t> sendCount(R, 0), recvCount(R, 0);
      for (int dst = 0; dst < R; ++dst)
        for (int t = 0; t < T; ++t)
          for (const RowRef& ref : group.sentTo[me][t])
            if (ref.dstRank == dst) {
              sendIndex.push_back(t);
              ++sendCount[dst];
            }
      for (const RecvRow& r : group.recv[me].rows) ++recvCount[r.srcRank];
      // For the way back: token t's rows in the receive buffer of the reverse all-to-all.
      std::vector<int32_t> offsets(T + 1, 0), list(sendIndex.size());
      for (int32_t t : sendIndex) ++offsets[t + 1];
      for (int t = 0; t < T; ++t) offsets[t + 1] += offsets[t];
      std::vector<int32_t> fill(offsets.begin(), offsets.end() - 1);
      for (size_t i = 0; i < sendIndex.size(); ++i) list[fill[sendIndex[i]]++] = static_cast<int32_t>(i);
      Device dIndex(sendIndex.size() * 4), dOffsets(offsets.size() * 4), dList(list.size() * 4);
      upload(dIndex, sendIndex);
      upload(dOffsets, offsets);
      upload(dList, list);
      Device sendBuf(std::max<size_t>(sendIndex.size(), 1) * rowBytes), recvBuf(std::max<int64_t>(recvRows, 1) * rowBytes);
      auto allToAllV = [&](const uint8_t* send, const std::vector<int64_t>& sends, uint8_t* recv,
                           const std::vector<int64_t>& recvs) {
        check(ncclGroupStart(), "ncclGroupStart");
        int64_t so = 0, ro = 0;
        for (int p = 0; p < R; ++p) {
          if (sends[p]) check(ncclSend(send + so * rowBytes, sends[p] * rowBytes, ncclUint8, p, nccl, stream), "ncclSend");
          if (recvs[p]) check(ncclRecv(recv + ro * rowBytes, recvs[p] * rowBytes, ncclUint8, p, nccl, stream), "ncclRecv");
          so += sends[p];
          ro += recvs[p];
        }
        check(ncclGroupEnd(), "ncclGroupEnd");
      };
      row.a2avDispatchUs = timer.time(o.warmup, o.iters, [&] {
        check(launchGatherRows(x.get(), dIndex.get<int32_t>(), static_cast<int64_t>(sendIndex.size()), rowBytes,
                               sendBuf.get(), stream),
              "gather");
        allToAllV(sendBuf.get<uint8_t>(), sendCount, recvBuf.get<uint8_t>(), recvCount);
      });
      row.a2avCombineUs = timer.time(o.warmup, o.iters, [&] {
        allToAllV(recvBuf.get<uint8_t>(), recvCount, sendBuf.get<uint8_t>(), sendCount);
        check(launchSumRowsBf16(sendBuf.get(), dOffsets.get<int32_t>(), dList.get<int32_t>(), T, H, out.get(), stream),
              "sum");
      });
    }
    row.rowsPerRank = groupRows / R;
    row.dispatchBytes = row.rowsPerRank * R * dispatchRowBytes;
    row.combineBytes = row.rowsPerRank * R * rowBytes;
    table.push_back(row);
    if (me == 0) {
      const Row& r = row;
      const double copyGBs = r.dispatchBytes / r.copyUs / 1e3;
      const double dispGBs = r.dispatchBytes / r.dispatchUs / 1e3;
      const double combGBs = r.combineBytes / r.combineUs / 1e3;
      const double copyCombGBs = copyGBs;  // the copy's bandwidth, measured on the dispatch bytes
      std::printf(" %7d %9.0f | %9.1f %9.1f %5.0f%% | %9.1f %9.1f %5.0f%% | %9.1f | %9.1f %9.1f | %7.2f%s\n", r.tokens,
                  r.rowsPerRank, r.dispatchUs, dispGBs, 100.0 * dispGBs / copyGBs, r.combineUs, combGBs,
                  100.0 * combGBs / copyCombGBs, copyGBs, r.a2avDispatchUs, r.a2avCombineUs, r.hostUs,
                  twoHopColumns(r).c_str());
      std::printf("#   phases, us from the call's start (mean of %d calls, slowest rank): %s\n", o.iters,
                  describePhases([&](int p) { return r.phaseStartUs[p]; }, [&](int p) { return r.phaseEndUs[p]; })
                      .c_str());
      std::fflush(stdout);
    }
  }
  checkMoe(ncclMoeHandleDestroy(handle), "ncclMoeHandleDestroy");

  if (json) {
    FILE* f = json.get();
    std::fprintf(f, "{\"ranks\": %d, \"device\": \"%s\", \"experts\": %d, \"topk\": %d, \"hidden\": %d, \"fp8\": %s, "
                    "\"layout\": \"%s\", \"sms\": %d, \"zero_copy\": %s, \"buffer_bytes_per_rank\": %.0f, ",
                 R, prop.name, o.experts, o.topk, H, o.fp8 ? "true" : "false", o.expertMajor ? "expert-major" : "per-rank",
                 o.sms, o.zeroCopy ? "true" : "false", bufferBytes);
    if (twoHop)
      std::fprintf(f, "\"domains\": %d, \"ranks_per_domain\": %d, \"network_transfers\": \"fitted to the counted rows (blocking-mode layouts)\", "
                      "\"network_chunks\": %d, \"network_chunk_rows\": %d, "
                      "\"traffic_bytes_per_rank\": \"group total / ranks\", \"meta_slot_bytes\": %zu, "
                      "\"net_slot_rows\": %zu, \"net_dispatch_row_bytes\": %zu, \"net_combine_row_bytes\": %zu, ",
                   M, D, info.netChunks, info.netChunkRows, info.metaSlotBytes, info.netSlotRows,
                   info.netDispatchRowBytes, info.netCombineRowBytes);
    std::fprintf(f, "\"rows\": [\n");
    for (size_t i = 0; i < table.size(); ++i) {
      const Row& r = table[i];
      std::fprintf(f, "  {\"tokens\": %d, \"rows_per_rank\": %.1f, \"dispatch_us\": %.2f, \"combine_us\": %.2f, "
                      "\"copy_us\": %.2f, \"a2av_dispatch_us\": %.2f, \"a2av_combine_us\": %.2f, \"host_us\": %.3f, "
                      "\"dispatch_bytes\": %.0f, \"combine_bytes\": %.0f",
                   r.tokens, r.rowsPerRank, r.dispatchUs, r.combineUs, r.copyUs, r.a2avDispatchUs, r.a2avCombineUs,
                   r.hostUs, r.dispatchBytes, r.combineBytes);
      std::fprintf(f, ", \"host_mean_us\": %.3f", r.hostMeanUs);
      if (r.twoHop)
        std::fprintf(f, ", \"nvlink_payload_bytes\": %.0f, \"network_payload_bytes\": %.0f, "
                        "\"network_payload_bytes_max_rank\": %lld, \"wire_bytes_fixed\": %lld, "
                        "\"wire_bytes_counted_rows\": %.0f, \"wire_over_payload\": %.4f",
                     r.traffic.nvlinkPayload, r.traffic.networkPayload, (long long)r.traffic.networkPayloadMax,
                     (long long)r.traffic.wireFixed, r.traffic.wireCountedRows,
                     wireOverPayload(static_cast<double>(r.traffic.wireFixed), r.traffic.networkPayload));
      std::fprintf(f, ", \"phases_us\": {");
      bool firstPhase = true;
      for (int p = 0; p < ncclMoeNumPhases; ++p) {
        if (r.phaseStartUs[p] < 0) continue;
        std::fprintf(f, "%s\"%s\": [%.2f, %.2f]", firstPhase ? "" : ", ",
                     ncclMoePhaseName(static_cast<ncclMoePhase_t>(p)), r.phaseStartUs[p], r.phaseEndUs[p]);
        firstPhase = false;
      }
      std::fprintf(f, "}}%s\n", i + 1 < table.size() ? "," : "");
    }
    std::fprintf(f, "]}\n");
  }
  checkMoe(ncclMoeCommDestroy(comm), "ncclMoeCommDestroy");
  check(ncclCommDestroy(nccl), "ncclCommDestroy");
  // After the teardown, which the other ranks take part in: a failed write ends only this rank.
  json.close();
  return 0;
}

}  // namespace
}  // namespace nccl_moe::perf

// Every flag, the rank layout and the JSON path are checked before the first CUDA call.
int main(int argc, char** argv) {
  using namespace nccl_moe;
  return tools::runToolMain("nccl-moe-perf", [&] {
    perf::Options options;
    if (perf::parseOptions(argc, argv, &options) == tools::ParseOutcome::kAnswered) return 0;
    perf::checkOptions(options);
    const RankLayout layout = perf::readLayout();
    perf::checkAgainstGroup(options, layout);
    tools::OutputFile json = perf::openJson(options, layout);
    return perf::run(options, layout, json);
  });
}
