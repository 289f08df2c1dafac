// nccl-moe-rank-check: one rank of a GPU correctness run, started by nccl-moe-run. Every rank
// builds the whole group's inputs from the same seed, so each can run the CPU reference for the
// group and compare its own outputs bit for bit: layout counts, dispatch rows (+ FP8 scales,
// probs, expert ids), combine sums, the probs gradient, and a cached-handle dispatch. Outputs are
// poisoned before every call; rows past the used part of a budgeted output must stay poisoned.
// Exit code 0 when every check passed.
#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <climits>
#include <cmath>
#include <cstdarg>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "nccl_moe.h"
#include "nccl_moe_bootstrap.h"
#include "reference/random_routing.h"
#include "reference/reference.h"
#include "tools/common/flags.h"
#include "tools/harness/device.h"
#include "tools/harness/rank_start.h"
#include "rank_check_support.h"
#include "tools/harness/reference_layer.h"

namespace nccl_moe {
namespace {

struct Options {
  int experts = 32;
  int hidden = 256;
  int tokens = 64;  // maxTokensPerRank; ranks get this many unless uneven/zero
  int topk = 4;
  bool mapFormat = false;
  bool expertMajor = false;
  int pad = 0;
  long long budget = -1;
  bool fp8 = false;
  bool pow2 = false;
  bool fp32 = false;
  double skew = 0.0;
  double masked = 0.0;
  bool uneven = false;
  int zeroRank = -1;
  int iters = 2;
  int sms = 8;
  uint64_t seed = 1;
  int badRank = -1;   // this rank's routing gets an out-of-range expert: every rank must see the error
  int badIters = 1000;  // ... in the first badIters iterations only (later layouts on the handle are good)
  int deadRank = -1;  // this rank stops answering after set-up: the others must time out
  bool deadInDispatch = false;  // ... after the layout instead: the others time out in dispatch
  int timeoutMs = 60000;
  int graphReplays = 0;  // capture layout + dispatch + combine once, replay with new routing
  bool stale = false;    // a handle outliving its communicator must be refused, not used
  bool resize = false;   // ncclMoeCommResize: grow, refused resizes, shrink; data checked at each size
  bool mismatch = false; // rank 1 asks for another maxTokensPerRank: creation must fail everywhere
  bool phaseTimes = false;  // time the phases of every call and check their order afterwards
  bool zeroCopy = false;    // inputs written into the communicator's input areas (no staging copy)
  int combineWindow = 0;    // ncclMoeConfig_t.combineWindowTokens (0: no windows)
  int budgetRank = -1;      // only this rank's layout has the row budget (the others: blocking mode)
  bool failedLayout = false;  // a layout that fails part-way must leave its handle refused until redone
  int badConfigRank = -1;     // this rank passes an invalid config: creation must fail everywhere, not hang
  int noTopologyRank = -1;    // this rank sets NCCL_MOE_TOPOLOGY=0 (fewer set-up exchanges): refused everywhere
  int otherEngineRank = -1;   // this rank flips NCCL_MOE_LAYOUT_ENGINE (another meta protocol): refused everywhere
  bool deadInCreate = false;  // --dead-rank never calls ncclMoeCommCreate: the others time out in it
  bool deadInReplay = false;  // with --graph: --dead-rank skips one more replay; the others must time out
  bool deadInCombine = false;  // --dead-rank stops after the dispatch: the others time out in combine
  bool deadInDestroy = false;  // --dead-rank stops before ncclMoeCommDestroy: the others' destroy completes
};

// The shared strict flag parser of the tools (tools/common/flags.h): a typo or an out-of-range
// value is a usage error naming the flag (exit 2), never a silent atoi default.
tools::FlagSet flagsOf(Options* o) {
  tools::FlagSet flags({"nccl-moe-rank-check", "nccl-moe-run -np R [--nodes M] nccl-moe-rank-check [flags]",
                        "One rank of a virtual-cluster correctness run: compares every output with the CPU reference\n"
                        "bit for bit, or plays one failure scenario (tests/gpu/test_virtual_cluster.cc).",
                        tools::versionText(NCCL_MOE_VERSION_CODE)});
  constexpr long long kNoRank = -1, kRanks = 1 << 16;
  flags.integer("--experts", "experts E", &o->experts, 1, 1 << 20);
  flags.integer("--hidden", "hidden size H", &o->hidden, 1, 1 << 20);
  flags.integer("--tokens", "max tokens per rank", &o->tokens, 0, 1 << 24);
  flags.integer("--topk", "selections per token K", &o->topk, 1, 1 << 10);
  flags.toggle("--map", "routing map format instead of top-k", &o->mapFormat);
  flags.toggle("--expert-major", "expert-major layout", &o->expertMajor);
  flags.integer("--pad", "expert-major padding multiple", &o->pad, 0, 1 << 16);
  flags.integer("--budget", "expert-major row budget (-1: none)", &o->budget, -1, INT32_MAX);
  flags.toggle("--fp8", "FP8 dispatch", &o->fp8);
  flags.toggle("--pow2", "power-of-two FP8 scales", &o->pow2);
  flags.toggle("--fp32", "fp32 rows instead of bf16", &o->fp32);
  flags.number("--skew", "routing skew (0: uniform)", &o->skew, 0.0, 1000.0);
  flags.number("--masked", "fraction of masked slots", &o->masked, 0.0, 1.0);
  flags.toggle("--uneven", "token counts differ between ranks", &o->uneven);
  flags.integer("--zero-rank", "this rank has no tokens (-1: none)", &o->zeroRank, kNoRank, kRanks);
  flags.integer("--iters", "calls per scenario", &o->iters, 1, 1000);
  flags.integer("--sms", "SM budget per op", &o->sms, 1, 1024);
  flags.integer("--seed", "random seed", &o->seed, 0, LLONG_MAX);
  flags.integer("--bad-rank", "this rank's routing is invalid (-1: none)", &o->badRank, kNoRank, kRanks);
  flags.integer("--bad-iters", "with --bad-rank: only the first N iterations' routing is invalid", &o->badIters, 0,
                1000);
  flags.integer("--dead-rank", "this rank stops answering (-1: none)", &o->deadRank, kNoRank, kRanks);
  flags.toggle("--dead-in-dispatch", "the dead rank stops after the layout", &o->deadInDispatch);
  flags.integer("--timeout-ms", "the communicator's timeout", &o->timeoutMs, 1, INT32_MAX);
  flags.integer("--graph", "CUDA graph replays with new routing (0: eager)", &o->graphReplays, 0, 1000);
  flags.toggle("--stale", "a handle outliving its communicator is refused", &o->stale);
  flags.toggle("--resize", "grow, refused resizes, shrink (ncclMoeCommResize); data checked at each size",
               &o->resize);
  flags.toggle("--config-mismatch", "rank 1 asks for another maxTokensPerRank", &o->mismatch);
  flags.toggle("--phase-times", "time every phase and check their order", &o->phaseTimes);
  flags.toggle("--zero-copy", "inputs in the communicator's input areas", &o->zeroCopy);
  flags.integer("--combine-window", "combineWindowTokens of the communicator (0: no windows)", &o->combineWindow, 0,
                1 << 24);
  flags.integer("--budget-rank", "only this rank's layout has the budget (-1: all)", &o->budgetRank, kNoRank, kRanks);
  flags.toggle("--failed-layout", "a layout failing part-way leaves its handle refused", &o->failedLayout);
  flags.integer("--bad-config-rank", "this rank passes an invalid config (-1: none)", &o->badConfigRank, kNoRank,
                kRanks);
  flags.integer("--no-topology-rank", "this rank sets NCCL_MOE_TOPOLOGY=0 (-1: none)", &o->noTopologyRank, kNoRank,
                kRanks);
  flags.integer("--other-engine-rank", "this rank flips NCCL_MOE_LAYOUT_ENGINE (-1: none)", &o->otherEngineRank, kNoRank,
                kRanks);
  flags.toggle("--dead-in-create", "the dead rank never creates its communicator", &o->deadInCreate);
  flags.toggle("--dead-in-replay", "with --graph: the dead rank skips a replay", &o->deadInReplay);
  flags.toggle("--dead-in-combine", "the dead rank stops after the dispatch", &o->deadInCombine);
  flags.toggle("--dead-in-destroy", "the dead rank skips destroy", &o->deadInDestroy);
  return flags;
}

// 0: run; 1: --help/--version answered; 2: a usage error (printed).
int parse(int argc, char** argv, Options* o) {
  try {
    if (flagsOf(o).parse(argc, argv) != tools::ParseOutcome::kRun) return 1;
    // A captured layout is in non-blocking mode: its outputs are sized by the row budget.
    if (o->graphReplays > 0 && o->budget < 0) throw tools::UsageError("--graph needs --budget (the captured layout's rows)");
    return 0;
  } catch (const tools::UsageError& e) {
    std::fprintf(stderr, "nccl-moe-rank-check: %s\n", e.what());
    return 2;
  }
}

using namespace rank_check;

#define CUDA_OK(call)                                                                           \
  do {                                                                                          \
    cudaError_t e_ = (call);                                                                    \
    if (e_ != cudaSuccess) {                                                                    \
      std::fprintf(stderr, "rank %d: %s failed: %s\n", gRank, #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                             \
    }                                                                                           \
  } while (0)


// A rank's top-k expert ids on the device and the ncclMoeRouting_t that points at them.
struct TopkOnDevice {
  DeviceBuffer idx;
  ncclMoeRouting_t routing = NCCL_MOE_ROUTING_INITIALIZER;
  TopkOnDevice(const RankRouting& mine, int topk) : idx(mine.topkIdx.size() * 8) {
    idx.upload(mine.topkIdx.data(), mine.topkIdx.size() * 8, kCopyStream);
    routing.numTokens = mine.numTokens;
    routing.topk = topk;
    routing.topkIdx = idx.get<int64_t>();
  }
};

template <class T>
std::vector<T> asVector(const std::vector<uint8_t>& bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

void compareBytes(const char* what, const uint8_t* got, const uint8_t* want, size_t rows, size_t rowBytes) {
  for (size_t r = 0; r < rows; ++r)
    if (std::memcmp(got + r * rowBytes, want + r * rowBytes, rowBytes) != 0) {
      size_t b = 0;
      while (got[r * rowBytes + b] == want[r * rowBytes + b]) ++b;
      fail("%s: row %zu differs at byte %zu (got 0x%02x, want 0x%02x)", what, r, b, got[r * rowBytes + b],
           want[r * rowBytes + b]);
      return;
    }
}

void expectPoison(const char* what, const std::vector<uint8_t>& bytes, size_t from, uint8_t poison) {
  for (size_t i = from; i < bytes.size(); ++i)
    if (bytes[i] != poison) {
      fail("%s: byte %zu past the used rows was written (0x%02x)", what, i, bytes[i]);
      return;
    }
}

// Every rank's routing and tokens, as the tools' reference layer takes them.
using Group = harness::GroupInputs;

Group makeGroup(const Options& o, int ranks, std::mt19937_64& rng) {
  Group g;
  g.shape = GroupShape{ranks, o.experts, o.hidden, o.tokens, o.topk};
  RoutingRecipe recipe;
  recipe.topk = o.topk;
  recipe.experts = o.experts;
  recipe.skew = o.skew;
  recipe.maskedFraction = o.masked;
  std::uniform_int_distribution<int> tokens(0, o.tokens);
  for (int r = 0; r < ranks; ++r) {
    recipe.numTokens = r == o.zeroRank ? 0 : o.uneven ? tokens(rng) : o.tokens;
    RankRouting routing = randomTopkRouting(recipe, rng);
    g.routings.push_back(o.mapFormat ? toRoutingMap(routing, o.experts) : routing);
    g.x.push_back(randomRows(o.fp32 ? ElementType::kFp32 : ElementType::kBf16, recipe.numTokens, o.hidden, 4.0f, rng));
  }
  return g;
}

class Check {
 public:
  Check(const Options& o, const RankLayout& env, ncclMoeComm_t comm, cudaStream_t stream)
      : o_(o), env_(env), comm_(comm), stream_(stream) {
    if (o.zeroCopy && ncclMoeCommGetInputBuffers(comm, &areas_) != ncclSuccess)
      fail("ncclMoeCommGetInputBuffers: %s", ncclMoeGetLastError(comm));
    if (o.zeroCopy && (areas_.dispatchX == nullptr) != o.fp8) fail("the dispatch input area must exist exactly when FP8 dispatch is off");
    // A windowed combine (one domain, 2 x window < tokens) has no combine input area.
    ncclMoeCommInfo_t info = NCCL_MOE_COMM_INFO_INITIALIZER;
    if (ncclMoeCommGetInfo(comm, &info) != ncclSuccess) fail("ncclMoeCommGetInfo: %s", ncclMoeGetLastError(comm));
    const bool windowed = o.combineWindow > 0 && 2 * static_cast<int64_t>(o.combineWindow) < o.tokens && info.domains == 1;
    if (o.zeroCopy && (areas_.combineX == nullptr) != windowed)
      fail("the combine input area must be absent exactly with a windowed combine (window %d, tokens %d, %d domains)",
           o.combineWindow, o.tokens, info.domains);
  }

  // One iteration: layout, counts, dispatch, combine with probs gradient, cached dispatch.
  void run(int iteration, ncclMoeHandle_t* handle) {
    std::mt19937_64 rng(o_.seed * 1000003ull + iteration);
    Group g = makeGroup(o_, env_.size, rng);
    const int me = env_.rank;
    const bool badRouting = o_.badRank >= 0 && iteration < o_.badIters;
    if (badRouting && g.routings[o_.badRank].numTokens > 0) {
      RankRouting& bad = g.routings[o_.badRank];
      if (o_.mapFormat) bad.routingMap[0] = 3;
      else bad.topkIdx[0] = o_.experts + 7;
    }
    const RankRouting& mine = g.routings[me];
    const int T = mine.numTokens, H = o_.hidden, E = o_.experts, L = E / env_.size;
    LayoutOptions options{o_.expertMajor ? OutputLayout::kExpertMajor : OutputLayout::kPerRank, o_.pad, o_.budget};

    // Inputs on the device.
    DeviceBuffer x(g.x[me].bytes().size()), idx(mine.topkIdx.size() * 8), probs(mine.topkProbs.size() * 4),
        map(mine.routingMap.size()), dense(mine.denseProbs.size() * 4);
    x.upload(g.x[me].bytes().data(), g.x[me].bytes().size(), kCopyStream);
    idx.upload(mine.topkIdx.data(), mine.topkIdx.size() * 8, kCopyStream);
    probs.upload(mine.topkProbs.data(), mine.topkProbs.size() * 4, kCopyStream);
    map.upload(mine.routingMap.data(), mine.routingMap.size(), kCopyStream);
    dense.upload(mine.denseProbs.data(), mine.denseProbs.size() * 4, kCopyStream);
    ncclMoeRouting_t routing = NCCL_MOE_ROUTING_INITIALIZER;
    routing.numTokens = T;
    if (o_.mapFormat) {
      routing.format = NCCL_MOE_ROUTING_MAP;
      routing.routingMap = map.get<uint8_t>();
      routing.denseProbs = dense.get<float>();
    } else {
      routing.topk = o_.topk;
      routing.topkIdx = idx.get<int64_t>();
      routing.topkProbs = probs.get<float>();
    }
    ncclMoeLayoutOptions_t layoutOptions = NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER;
    layoutOptions.layout = o_.expertMajor ? NCCL_MOE_LAYOUT_EXPERT_MAJOR : NCCL_MOE_LAYOUT_PER_RANK;
    layoutOptions.padMultiple = o_.pad;
    // A budget no layout reaches gives the same rows as none, so one reference serves both modes.
    const bool budgeted = o_.budget >= 0 && (o_.budgetRank < 0 || o_.budgetRank == me);
    layoutOptions.rowBudget = budgeted ? o_.budget : -1;
    if (ncclMoeLayoutCreate(comm_, &routing, &layoutOptions, handle, stream_) != ncclSuccess) {
      fail("ncclMoeLayoutCreate: %s", ncclMoeGetLastError(comm_));
      return;
    }
    int64_t rows = -1;
    std::vector<int64_t> perExpert(L, -1);
    int32_t overflow = -1;
    const ncclResult_t counted = ncclMoeHandleGetCounts(*handle, &rows, perExpert.data(), &overflow);
    if (badRouting) {
      const std::string message = ncclMoeGetLastError(comm_);
      const std::string want = "rank " + std::to_string(o_.badRank) + " token 0";
      if (counted != ncclInvalidArgument || message.find(want) == std::string::npos)
        fail("a bad routing on rank %d must fail ncclMoeHandleGetCounts naming it; got %d: %s", o_.badRank, counted,
             message.c_str());
      else
        std::printf("rank %d: bad routing reported as expected: %s\n", me, message.c_str());
      return;
    }
    if (counted != ncclSuccess) {
      fail("ncclMoeHandleGetCounts: %s", ncclMoeGetLastError(comm_));
      return;
    }

    // The reference for the whole group.
    GroupLayout layout;
    Status status = buildGroupLayout(g.shape, g.routings, options, &layout);
    std::vector<RankDispatchOutput> want;
    if (status.isOk()) status = referenceDispatch(layout, g.routings, g.x, {o_.fp8, o_.pow2}, &want);
    if (!status.isOk()) {
      fail("reference: %s", status.message().c_str());
      return;
    }
    if (rows != layout.recvRows(me)) fail("recvRows %lld, reference %lld", (long long)rows, (long long)layout.recvRows(me));
    if (perExpert != want[me].tokensPerExpert) fail("tokensPerExpert differs from the reference");
    if (overflow != (want[me].overflow ? 1 : 0)) fail("overflow %d, reference %d", overflow, want[me].overflow);

    // Dispatch into poisoned outputs of the full capacity.
    const int64_t capacity = budgeted ? o_.budget : rows;
    const ElementType rowType = o_.fp32 ? ElementType::kFp32 : ElementType::kBf16;
    const size_t recvRowBytes = o_.fp8 ? H : static_cast<size_t>(H) * elementBytes(rowType);
    const int blocks = fp8BlockCount(H);
    const int width = o_.expertMajor ? 1 : (o_.mapFormat ? L : o_.topk);
    DeviceBuffer recvX(capacity * recvRowBytes), recvScales(o_.fp8 ? capacity * blocks * 4 : 0),
        recvIdx(!o_.expertMajor && !o_.mapFormat ? capacity * width * 8 : 0),
        recvMap(!o_.expertMajor && o_.mapFormat ? capacity * width : 0), recvProbs(capacity * width * 4);
    recvX.fill(0xAB, kCopyStream);
    recvScales.fill(0xAB, kCopyStream);
    recvIdx.fill(0xAB, kCopyStream);
    recvMap.fill(0xAB, kCopyStream);
    recvProbs.fill(0xAB, kCopyStream);
    if (iteration == 0 && env_.localSize < env_.size && o_.budget < 0)
      expectCaptureRefused(*handle, capacity, recvX.get(), o_.fp8 ? recvScales.get<float>() : nullptr);
    ncclMoeDispatchArgs_t d = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
    d.x = x.get();
    const bool zeroCopyDispatch = o_.zeroCopy && areas_.dispatchX != nullptr;
    if (zeroCopyDispatch) {
      d.x = static_cast<uint8_t*>(areas_.dispatchX) + 16;
      d.recvRows = capacity;
      d.recvX = recvX.get();
      if (ncclMoeDispatch(comm_, *handle, &d, stream_) != ncclInvalidArgument)
        fail("a dispatch input inside the input area (not its start) must be refused");
      CUDA_OK(cudaMemcpyAsync(areas_.dispatchX, x.get(), g.x[me].bytes().size(), cudaMemcpyDeviceToDevice, stream_));
      d.x = areas_.dispatchX;
    }
    d.recvRows = capacity;
    d.recvX = recvX.get();
    d.recvScales = o_.fp8 ? recvScales.get<float>() : nullptr;
    d.recvTopkIdx = !o_.expertMajor && !o_.mapFormat ? recvIdx.get<int64_t>() : nullptr;
    d.recvRoutingMap = !o_.expertMajor && o_.mapFormat ? recvMap.get<uint8_t>() : nullptr;
    d.recvProbs = recvProbs.get<float>();
    if (ncclMoeDispatch(comm_, *handle, &d, stream_) != ncclSuccess) {
      fail("ncclMoeDispatch: %s", ncclMoeGetLastError(comm_));
      return;
    }
    // Zero-copy: the next rows go into the input area as soon as the dispatch has completed on
    // the stream, with no host wait; the peers must have read the previous rows by then.
    std::vector<HostRows> w = cachedDispatchRows(iteration, g);
    DeviceBuffer wIn(w[me].bytes().size()), recvW(zeroCopyDispatch ? capacity * recvRowBytes : 0);
    wIn.upload(w[me].bytes().data(), w[me].bytes().size(), kCopyStream);
    recvW.fill(0x5A, kCopyStream);
    if (zeroCopyDispatch) {
      CUDA_OK(cudaMemcpyAsync(areas_.dispatchX, wIn.get(), w[me].bytes().size(), cudaMemcpyDeviceToDevice, stream_));
      ncclMoeDispatchArgs_t next = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
      next.x = areas_.dispatchX;
      next.recvRows = capacity;
      next.recvX = recvW.get();
      if (ncclMoeDispatch(comm_, *handle, &next, stream_) != ncclSuccess) fail("back-to-back zero-copy ncclMoeDispatch: %s", ncclMoeGetLastError(comm_));
    }
    CUDA_OK(cudaStreamSynchronize(stream_));
    checkAsync("dispatch");
    const std::vector<uint8_t> gotX = download(recvX);
    compareBytes("dispatch rows", gotX.data(), want[me].x.bytes().data(), rows, recvRowBytes);
    expectPoison("dispatch rows", gotX, rows * recvRowBytes, 0xAB);
    if (o_.fp8) {
      const std::vector<uint8_t> gotScales = download(recvScales);
      compareBytes("FP8 scales", gotScales.data(), reinterpret_cast<const uint8_t*>(want[me].scales.data()), rows,
                   blocks * 4);
      expectPoison("FP8 scales", gotScales, rows * blocks * 4, 0xAB);
    }
    const std::vector<uint8_t> gotProbs = download(recvProbs);
    compareBytes("dispatch probs", gotProbs.data(), reinterpret_cast<const uint8_t*>(want[me].probs.data()), rows,
                 width * 4);
    if (d.recvTopkIdx) {
      const std::vector<uint8_t> got = download(recvIdx);
      compareBytes("dispatch expert ids", got.data(), reinterpret_cast<const uint8_t*>(want[me].topkIdx.data()), rows,
                   width * 8);
    }
    if (d.recvRoutingMap) {
      const std::vector<uint8_t> got = download(recvMap);
      compareBytes("dispatch routing map", got.data(), want[me].routingMap.data(), rows, width);
    }

    // Combine: every rank's expert outputs and probs gradients, generated identically everywhere.
    std::vector<HostRows> y;
    std::vector<std::vector<float>> gradProbs;
    for (int r = 0; r < env_.size; ++r) {
      std::mt19937_64 rowRng(o_.seed * 7919ull + iteration * 131ull + r);
      y.push_back(randomRows(rowType, layout.recvRows(r), H, 3.0f, rowRng));
      std::uniform_real_distribution<float> grad(-1.0f, 1.0f);
      std::vector<float> gp(static_cast<size_t>(layout.recvRows(r)) * width);
      for (float& v : gp) v = grad(rowRng);
      gradProbs.push_back(std::move(gp));
    }
    std::vector<HostRows> combined;
    std::vector<std::vector<float>> wantGrad;
    if (Status s = referenceCombine(layout, y, CombineOrder{env_.localSize}, &combined); !s.isOk()) fail("reference combine: %s", s.message().c_str());
    if (Status s = referenceProbsGrad(layout, g.routings, gradProbs, &wantGrad); !s.isOk())
      fail("reference probs grad: %s", s.message().c_str());
    const int slots = mine.slots(E);
    DeviceBuffer yIn(y[me].bytes().size()), gradIn(gradProbs[me].size() * 4), out(static_cast<size_t>(T) * H * elementBytes(rowType)),
        outGrad(static_cast<size_t>(T) * slots * 4);
    yIn.upload(y[me].bytes().data(), y[me].bytes().size(), kCopyStream);
    gradIn.upload(gradProbs[me].data(), gradProbs[me].size() * 4, kCopyStream);
    const bool zeroCopyCombine = o_.zeroCopy && !o_.expertMajor && areas_.combineX != nullptr;
    if (o_.zeroCopy && o_.expertMajor && areas_.combineX != nullptr) {
      ncclMoeCombineArgs_t refused = NCCL_MOE_COMBINE_ARGS_INITIALIZER;
      refused.x = areas_.combineX;
      refused.rows = rows;
      refused.out = out.get();
      if (ncclMoeCombine(comm_, *handle, &refused, stream_) != ncclInvalidUsage)
        fail("a zero-copy combine with an expert-major handle must be refused");
    }
    for (int repeat = 0; repeat < 2; ++repeat) {
      out.fill(0xCD, kCopyStream);
      outGrad.fill(0xCD, kCopyStream);
      ncclMoeCombineArgs_t c = NCCL_MOE_COMBINE_ARGS_INITIALIZER;
      c.x = yIn.get();
      if (zeroCopyCombine) {
        CUDA_OK(cudaMemcpyAsync(areas_.combineX, yIn.get(), y[me].bytes().size(), cudaMemcpyDeviceToDevice, stream_));
        c.x = areas_.combineX;
      }
      c.rows = rows;
      c.out = out.get();
      c.probsGrad = gradIn.get<float>();
      c.outProbsGrad = outGrad.get<float>();
      if (ncclMoeCombine(comm_, *handle, &c, stream_) != ncclSuccess) {
        fail("ncclMoeCombine: %s", ncclMoeGetLastError(comm_));
        return;
      }
      // Zero-copy: overwrite the area right away; the peers must have read it already.
      if (zeroCopyCombine) CUDA_OK(cudaMemsetAsync(areas_.combineX, 0x77, y[me].bytes().size(), stream_));
      CUDA_OK(cudaStreamSynchronize(stream_));
      checkAsync("combine");
      const std::vector<uint8_t> gotOut = download(out);
      compareBytes(repeat ? "combine (repeated)" : "combine", gotOut.data(), combined[me].bytes().data(), T,
                   static_cast<size_t>(H) * elementBytes(rowType));
      const std::vector<uint8_t> gotGrad = download(outGrad);
      compareBytes("probs gradient", gotGrad.data(), reinterpret_cast<const uint8_t*>(wantGrad[me].data()), T, slots * 4);
    }

    // Cached-handle dispatch (combine's backward): rows only.
    std::vector<HostRows> wantRows;
    std::vector<std::vector<float>> wantScales;
    if (Status s = referenceDispatchRows(layout, w, {o_.fp8, o_.pow2}, &wantRows, &wantScales); !s.isOk())
      fail("reference cached dispatch: %s", s.message().c_str());
    if (zeroCopyDispatch) {
      const std::vector<uint8_t> got = download(recvW);
      compareBytes("back-to-back zero-copy dispatch rows", got.data(), wantRows[me].bytes().data(), rows, recvRowBytes);
    }
    recvX.fill(0xEF, kCopyStream);
    ncclMoeDispatchArgs_t cached = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
    cached.x = wIn.get();
    cached.recvRows = capacity;
    cached.recvX = recvX.get();
    cached.recvScales = o_.fp8 ? recvScales.get<float>() : nullptr;
    if (ncclMoeDispatch(comm_, *handle, &cached, stream_) != ncclSuccess) {
      fail("cached ncclMoeDispatch: %s", ncclMoeGetLastError(comm_));
      return;
    }
    CUDA_OK(cudaStreamSynchronize(stream_));
    checkAsync("cached dispatch");
    const std::vector<uint8_t> gotW = download(recvX);
    compareBytes("cached dispatch rows", gotW.data(), wantRows[me].bytes().data(), rows, recvRowBytes);
    expectPoison("cached dispatch rows", gotW, rows * recvRowBytes, 0xEF);
  }

 private:
  // Two-hop, every rank's layout in blocking mode: the calls move the rows this layout counted, so
  // capturing one into a graph is refused before anything is enqueued.
  void expectCaptureRefused(ncclMoeHandle_t handle, int64_t capacity, void* recvX, float* recvScales) {
    cudaStream_t side;
    CUDA_OK(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking));
    CUDA_OK(cudaStreamBeginCapture(side, cudaStreamCaptureModeThreadLocal));
    ncclMoeDispatchArgs_t d = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
    d.x = recvX;  // never read: the call is refused
    d.recvRows = capacity;
    d.recvX = recvX;
    d.recvScales = recvScales;
    const ncclResult_t result = ncclMoeDispatch(comm_, handle, &d, side);
    const std::string message = ncclMoeGetLastError(comm_);
    cudaGraph_t graph = nullptr;
    CUDA_OK(cudaStreamEndCapture(side, &graph));
    if (graph) CUDA_OK(cudaGraphDestroy(graph));
    CUDA_OK(cudaStreamDestroy(side));
    if (result != ncclInvalidUsage || message.find("cannot be captured") == std::string::npos)
      fail("capturing a two-hop dispatch of a blocking-mode layout must be refused; got %d: %s", result,
           message.c_str());
  }

  // Rows of the cached-handle dispatch, every rank's (generated identically everywhere).
  std::vector<HostRows> cachedDispatchRows(int iteration, const Group& g) const {
    std::vector<HostRows> w;
    for (int r = 0; r < env_.size; ++r) {
      std::mt19937_64 wRng(o_.seed * 104729ull + iteration * 17ull + r);
      w.push_back(randomRows(o_.fp32 ? ElementType::kFp32 : ElementType::kBf16, g.routings[r].numTokens, o_.hidden,
                             1.0f, wRng));
    }
    return w;
  }

  void checkAsync(const char* where) {
    ncclResult_t async = ncclSuccess;
    if (ncclMoeCommGetAsyncError(comm_, &async) != ncclSuccess || async != ncclSuccess)
      fail("%s: asynchronous error %d: %s", where, async, ncclMoeGetLastError(comm_));
  }

  const Options& o_;
  const RankLayout& env_;
  ncclMoeComm_t comm_;
  cudaStream_t stream_;
  ncclMoeInputBuffers_t areas_ = NCCL_MOE_INPUT_BUFFERS_INITIALIZER;
};

// The non-blocking path in a CUDA graph: layout (reusing the handle), dispatch and combine are
// captured once, then replayed with new routing contents written into the same device buffers.
// Needs --expert-major --budget B and equal T on every rank; combine sums the dispatched rows.
void runGraph(const Options& o, const RankLayout& env, ncclMoeComm_t comm, cudaStream_t stream,
              ncclMoeHandle_t* handle) {
  const int me = env.rank, T = o.tokens, H = o.hidden, K = o.topk, L = o.experts / env.size;
  const size_t rowBytes = static_cast<size_t>(H) * 2;
  DeviceBuffer idx(static_cast<size_t>(T) * K * 8), probs(static_cast<size_t>(T) * K * 4), x(T * rowBytes),
      recvX(o.budget * rowBytes), recvProbs(o.budget * 4), out(T * rowBytes);
  ncclMoeRouting_t routing = NCCL_MOE_ROUTING_INITIALIZER;
  routing.numTokens = T;
  routing.topk = K;
  routing.topkIdx = idx.get<int64_t>();
  routing.topkProbs = probs.get<float>();
  ncclMoeLayoutOptions_t options = NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER;
  options.layout = NCCL_MOE_LAYOUT_EXPERT_MAJOR;
  options.padMultiple = o.pad;
  options.rowBudget = o.budget;
  ncclMoeDispatchArgs_t d = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
  d.x = x.get();
  d.recvRows = o.budget;
  d.recvX = recvX.get();
  d.recvProbs = recvProbs.get<float>();
  ncclMoeCombineArgs_t c = NCCL_MOE_COMBINE_ARGS_INITIALIZER;
  c.x = recvX.get();
  c.rows = o.budget;
  c.out = out.get();
  auto enqueue = [&]() {
    return ncclMoeLayoutCreate(comm, &routing, &options, handle, stream) == ncclSuccess &&
           ncclMoeDispatch(comm, *handle, &d, stream) == ncclSuccess && ncclMoeCombine(comm, *handle, &c, stream) == ncclSuccess;
  };
  auto load = [&](int replay, Group* g) {
    std::mt19937_64 rng(o.seed * 31337ull + replay);
    Options fixed = o;
    fixed.uneven = false;
    fixed.zeroRank = -1;
    fixed.mapFormat = false;
    fixed.fp32 = false;
    *g = makeGroup(fixed, env.size, rng);
    idx.upload(g->routings[me].topkIdx.data(), g->routings[me].topkIdx.size() * 8, kCopyStream);
    probs.upload(g->routings[me].topkProbs.data(), g->routings[me].topkProbs.size() * 4, kCopyStream);
    x.upload(g->x[me].bytes().data(), g->x[me].bytes().size(), kCopyStream);
  };
  Group g;
  load(0, &g);
  if (!enqueue()) {  // warm-up outside the capture: allocates the handle
    fail("graph warm-up: %s", ncclMoeGetLastError(comm));
    return;
  }
  CUDA_OK(cudaStreamSynchronize(stream));
  cudaGraph_t graph;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const bool captured = enqueue();
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  if (!captured) {
    fail("capture: %s", ncclMoeGetLastError(comm));
    return;
  }
  cudaGraphExec_t exec;
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  for (int replay = 1; replay <= o.graphReplays && gFailures == 0; ++replay) {
    load(replay, &g);
    recvX.fill(0xAB, kCopyStream);
    out.fill(0xCD, kCopyStream);
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    GroupLayout layout;
    std::vector<RankDispatchOutput> want;
    Status status = buildGroupLayout(g.shape, g.routings, {OutputLayout::kExpertMajor, o.pad, o.budget}, &layout);
    if (status.isOk()) status = referenceDispatch(layout, g.routings, g.x, {}, &want);
    std::vector<HostRows> dispatched;
    for (int r = 0; r < env.size && status.isOk(); ++r) {
      HostRows rows(ElementType::kBf16, o.budget, H);
      std::memcpy(rows.bytes().data(), want[r].x.bytes().data(), want[r].x.bytes().size());
      dispatched.push_back(std::move(rows));
    }
    std::vector<HostRows> combined;
    if (status.isOk()) status = referenceCombine(layout, dispatched, CombineOrder{env.localSize}, &combined);
    if (!status.isOk()) {
      fail("reference: %s", status.message().c_str());
      return;
    }
    const int64_t used = layout.recvRows(me);
    const std::vector<uint8_t> gotX = download(recvX);
    compareBytes("graph replay dispatch rows", gotX.data(), want[me].x.bytes().data(), used, rowBytes);
    expectPoison("graph replay dispatch rows", gotX, used * rowBytes, 0xAB);
    const std::vector<uint8_t> gotOut = download(out);
    compareBytes("graph replay combine", gotOut.data(), combined[me].bytes().data(), T, rowBytes);
    const int64_t* deviceRows = nullptr;
    const int64_t* devicePerExpert = nullptr;
    const int32_t* deviceOverflow = nullptr;
    ncclMoeHandleGetDeviceCounts(*handle, &deviceRows, &devicePerExpert, &deviceOverflow);
    int64_t rows = -1;
    int32_t overflow = -1;
    std::vector<int64_t> perExpert(L);
    CUDA_OK(cudaMemcpy(&rows, deviceRows, 8, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(&overflow, deviceOverflow, 4, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(perExpert.data(), devicePerExpert, L * 8, cudaMemcpyDeviceToHost));
    if (rows != used || overflow != (want[me].overflow ? 1 : 0) || perExpert != want[me].tokensPerExpert)
      fail("graph replay %d: device counts differ from the reference (rows %lld vs %lld)", replay, (long long)rows,
           (long long)used);
    else
      std::printf("rank %d: graph replay %d matches (%lld rows, overflow %d)\n", me, replay, (long long)rows, overflow);
  }
  if (o.deadInReplay && gFailures == 0) {
    // One more replay that the dead rank skips: nothing watches a replay from the host call that
    // made it, so the graph itself must fail every other rank within the timeout, two-hop included.
    if (me == o.deadRank) {
      std::printf("rank %d: staying silent in the replay\n", me);
      std::fflush(stdout);
      usleep(static_cast<useconds_t>(o.timeoutMs) * 3000u);
    } else {
      const auto start = std::chrono::steady_clock::now();
      CUDA_OK(cudaGraphLaunch(exec, stream));
      const cudaError_t synced = cudaStreamSynchronize(stream);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ncclResult_t result = ncclSuccess;
      ncclMoeCommGetAsyncError(comm, &result);
      const std::string message = ncclMoeGetLastError(comm);
      if (synced != cudaSuccess || result != ncclRemoteError || message.find("timed out") == std::string::npos ||
          seconds > o.timeoutMs / 1000.0 + 1.0)
        fail("a replay without rank %d must fail within %d ms + 1 s: %s after %.2f s, result %d: %s", o.deadRank,
             o.timeoutMs, cudaGetErrorString(synced), seconds, result, message.c_str());
      else
        std::printf("rank %d: replay without rank %d timed out after %.2f s: %s\n", me, o.deadRank, seconds,
                    message.c_str());
    }
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

// A handle made on a communicator that was then destroyed and re-created (the way buffers grow)
// must be refused with a clear message by every call, and still be destroyable.
void runStale(const Options& o, const RankLayout& env, ncclComm_t nccl, const ncclMoeConfig_t& config,
              ncclMoeComm_t* comm, cudaStream_t stream) {
  std::mt19937_64 rng(o.seed);
  Group g = makeGroup(o, env.size, rng);
  const RankRouting& mine = g.routings[env.rank];
  DeviceBuffer x(g.x[env.rank].bytes().size()), recv(64);
  TopkOnDevice topk(mine, o.topk);
  const ncclMoeRouting_t& routing = topk.routing;
  ncclMoeLayoutOptions_t options = NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER;
  ncclMoeHandle_t old = nullptr;
  if (ncclMoeLayoutCreate(*comm, &routing, &options, &old, stream) != ncclSuccess) {
    fail("ncclMoeLayoutCreate: %s", ncclMoeGetLastError(*comm));
    return;
  }
  int64_t rows = 0;
  ncclMoeHandleGetCounts(old, &rows, nullptr, nullptr);
  // Grow: destroy and re-create, collectively.
  ncclMoeConfig_t bigger = config;
  bigger.maxTokensPerRank = config.maxTokensPerRank * 2;
  if (ncclMoeCommDestroy(*comm) != ncclSuccess || ncclMoeCommCreate(nccl, &bigger, comm) != ncclSuccess) {
    fail("re-create: %s", ncclMoeGetLastError(nullptr));
    return;
  }
  ncclMoeDispatchArgs_t d = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
  d.x = x.get();
  d.recvRows = rows;
  d.recvX = recv.get();
  const ncclResult_t dispatched = ncclMoeDispatch(*comm, old, &d, stream);
  const std::string message = ncclMoeGetLastError(*comm);
  if (dispatched != ncclInvalidUsage || message.find("stale") == std::string::npos)
    fail("a stale handle must be refused; got %d: %s", dispatched, message.c_str());
  ncclMoeHandle_t reused = old;
  if (ncclMoeLayoutCreate(*comm, &routing, &options, &reused, stream) != ncclInvalidUsage)
    fail("ncclMoeLayoutCreate must refuse to reuse a stale handle");
  if (ncclMoeHandleGetCounts(old, &rows, nullptr, nullptr) != ncclInvalidUsage)
    fail("ncclMoeHandleGetCounts must refuse a stale handle");
  if (ncclMoeHandleDestroy(old) != ncclSuccess) fail("a stale handle must still be destroyable");
  if (gFailures == 0) std::printf("rank %d: stale handle refused: %s\n", env.rank, message.c_str());
}

size_t bufferBytesOf(ncclMoeComm_t comm) {
  ncclMoeCommInfo_t info = NCCL_MOE_COMM_INFO_INITIALIZER;
  if (ncclMoeCommGetInfo(comm, &info) != ncclSuccess) fail("ncclMoeCommGetInfo: %s", ncclMoeGetLastError(comm));
  return info.bufferBytes;
}

// `iters` checked iterations of `o` (its token count) on a fresh handle; the handle is destroyed.
void checkAtSize(const Options& o, const RankLayout& env, ncclMoeComm_t comm, cudaStream_t stream) {
  Check check(o, env, comm, stream);
  ncclMoeHandle_t handle = nullptr;
  for (int it = 0; it < o.iters && gFailures == 0; ++it) check.run(it, &handle);
  if (handle) ncclMoeHandleDestroy(handle);
}

// ncclMoeCommResize in place of destroy + re-create: grow to 2T (the handle of size T is then
// stale), two refused resizes that must leave the communicator working at 2T (sizes that differ
// between ranks; an invalid size), then shrink to T/2. Every size moves checked data (zero-copy
// areas included: Check fetches them again).
void runResize(const Options& o, const RankLayout& env, ncclMoeComm_t comm, cudaStream_t stream,
               ncclMoeHandle_t* handle) {
  const size_t before = bufferBytesOf(comm);
  Options grown = o;
  grown.tokens = 2 * o.tokens;
  if (ncclMoeCommResize(comm, grown.tokens) != ncclSuccess) {
    fail("ncclMoeCommResize(%d): %s", grown.tokens, ncclMoeGetLastError(comm));
    return;
  }
  if (bufferBytesOf(comm) <= before) fail("the buffer did not grow: %zu bytes, %zu before", bufferBytesOf(comm), before);
  ncclMoeDispatchArgs_t d = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
  DeviceBuffer x(64), recv(64);
  d.x = x.get();
  d.recvX = recv.get();
  if (ncclMoeDispatch(comm, *handle, &d, stream) != ncclInvalidUsage ||
      std::string(ncclMoeGetLastError(comm)).find("resized") == std::string::npos)
    fail("a handle made before the resize must be refused: %s", ncclMoeGetLastError(comm));
  if (ncclMoeHandleDestroy(*handle) != ncclSuccess) fail("a handle made before the resize must still be destroyable");
  *handle = nullptr;
  checkAtSize(grown, env, comm, stream);
  if (gFailures != 0) return;

  const int asked = env.rank == 1 ? grown.tokens + 64 : grown.tokens / 2;
  ncclResult_t refused = ncclMoeCommResize(comm, asked);
  std::string message = ncclMoeGetLastError(comm);
  if (refused != ncclInvalidUsage || message.find("differs between ranks") == std::string::npos)
    fail("sizes that differ between ranks must be refused on every rank; got %d: %s", refused, message.c_str());
  refused = ncclMoeCommResize(comm, 0);
  message = ncclMoeGetLastError(comm);
  if (refused != ncclInvalidArgument || message.find("rank 0 cannot resize") == std::string::npos)
    fail("maxTokensPerRank=0 must be refused on every rank, naming rank 0; got %d: %s", refused, message.c_str());
  checkAtSize(grown, env, comm, stream);  // unchanged by the refused resizes
  if (gFailures != 0) return;

  Options shrunk = o;
  shrunk.tokens = std::max(1, o.tokens / 2);
  const size_t large = bufferBytesOf(comm);
  if (ncclMoeCommResize(comm, shrunk.tokens) != ncclSuccess) {
    fail("ncclMoeCommResize(%d): %s", shrunk.tokens, ncclMoeGetLastError(comm));
    return;
  }
  if (bufferBytesOf(comm) >= large) fail("the buffer did not shrink: %zu bytes, %zu before", bufferBytesOf(comm), large);
  checkAtSize(shrunk, env, comm, stream);
  if (gFailures == 0)
    std::printf("rank %d: resized %d -> %d -> %d tokens per rank (buffer %zu -> %zu -> %zu bytes), refused resizes left it "
                "working\n",
                env.rank, o.tokens, grown.tokens, shrunk.tokens, before, large, bufferBytesOf(comm));
}

// A layout on a reused handle that fails after it began to rewrite the handle (here: its launch
// into a stream whose graph capture an illegal call invalidated, on every rank, so no rank enqueues
// anything) must leave the handle refused, not half-updated, until a layout on it succeeds. Then
// the handle and the communicator work as before (the iterations that follow check the data).
void runFailedLayout(const Options& o, const RankLayout& env, ncclMoeComm_t comm, cudaStream_t stream,
                     ncclMoeHandle_t handle) {
  std::mt19937_64 rng(o.seed + 77);
  Group g = makeGroup(o, env.size, rng);
  const RankRouting& mine = g.routings[env.rank];
  TopkOnDevice topk(mine, o.topk);
  const ncclMoeRouting_t& routing = topk.routing;
  ncclMoeLayoutOptions_t options = NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER;
  CUDA_OK(cudaStreamSynchronize(stream));
  // The failing layout runs on a stream of its own, thrown away afterwards: whatever an invalidated
  // capture leaves behind on its stream, the redone layout below runs on the test's stream.
  cudaStream_t doomed = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&doomed, cudaStreamNonBlocking));
  CUDA_OK(cudaStreamBeginCapture(doomed, cudaStreamCaptureModeGlobal));
  // Synchronising a capturing stream is illegal: it invalidates the capture, so the layout's
  // launches below fail after the handle was reused.
  (void)cudaStreamSynchronize(doomed);
  ncclMoeHandle_t reused = handle;
  const ncclResult_t laid = ncclMoeLayoutCreate(comm, &routing, &options, &reused, doomed);
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(doomed, &graph);
  if (graph) cudaGraphDestroy(graph);
  (void)cudaGetLastError();
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusActive;
  if (cudaStreamIsCapturing(doomed, &capture) != cudaSuccess || capture != cudaStreamCaptureStatusNone)
    fail("the invalidated capture did not end (cudaStreamEndCapture: %s)", cudaGetErrorString(ended));
  CUDA_OK(cudaStreamDestroy(doomed));
  (void)cudaGetLastError();
  // The test's own stream must have stayed out of the capture, and take work again.
  if (cudaStreamIsCapturing(stream, &capture) != cudaSuccess || capture != cudaStreamCaptureStatusNone)
    fail("the test's stream is left in capture state %d after the invalidated capture", static_cast<int>(capture));
  DeviceBuffer probe(64);
  if (const cudaError_t probed = cudaMemsetAsync(probe.get<uint8_t>(), 0, 64, stream); probed != cudaSuccess)
    fail("a memset on the test's stream fails after the invalidated capture: %s", cudaGetErrorString(probed));
  CUDA_OK(cudaStreamSynchronize(stream));
  if (laid == ncclSuccess) {
    fail("a layout launched into an invalidated capture must fail");
    return;
  }
  int64_t rows = 0;
  const ncclResult_t counted = ncclMoeHandleGetCounts(handle, &rows, nullptr, nullptr);
  const std::string message = ncclMoeGetLastError(comm);
  if (counted != ncclInvalidUsage || message.find("last ncclMoeLayoutCreate failed") == std::string::npos)
    fail("a handle whose layout failed must be refused until redone; got %d: %s", counted, message.c_str());
  if (gFailures == 0) std::printf("rank %d: half-done layout refused: %s\n", env.rank, message.c_str());
}

// The dead-rank scenario: the others must fail with a timeout naming the silent peer, in the
// layout or (deadInDispatch) in the dispatch after a layout every rank completed.
// The phases of the last timed calls (ncclMoeCommGetPhaseTimes): which ran, and in which order.
// Phases on different streams are compared with a slack of kEventSlackUs: the end of the network
// phase is an event recorded on the exchange's stream right after the event the next kernel waits
// for, so it may carry a timestamp a little after that kernel started.
void checkPhaseTimes(const RankLayout& env, ncclMoeComm_t comm) {
  constexpr float kEventSlackUs = 5.0f;
  ncclMoePhaseTimes_t t = NCCL_MOE_PHASE_TIMES_INITIALIZER;
  if (ncclMoeCommGetPhaseTimes(comm, &t) != ncclSuccess) {
    fail("ncclMoeCommGetPhaseTimes: %s", ncclMoeGetLastError(comm));
    return;
  }
  const bool twoHop = env.localSize < env.size;
  // With one domain the default layout engine (2) is one kernel, timed as layout.publish; engines
  // 1 and 0 add layout.scan (docs/environment.md).
  const char* engine = std::getenv("NCCL_MOE_LAYOUT_ENGINE");
  const bool oneKernelLayout = !twoHop && (engine == nullptr || std::string(engine) == "2");
  auto ran = [&](ncclMoePhase_t p) { return t.startUs[p] >= 0.0f; };
  for (int p = 0; p < ncclMoeNumPhases; ++p) {
    const auto phase = static_cast<ncclMoePhase_t>(p);
    const bool expected = twoHop || phase == ncclMoePhaseLayoutPublish ||
                          (phase == ncclMoePhaseLayoutScan && !oneKernelLayout) ||
                          phase == ncclMoePhaseDispatchNvlink || phase == ncclMoePhaseCombineNvlink;
    if (ran(phase) != expected)
      fail("phase %s %s", ncclMoePhaseName(phase), expected ? "was not timed" : "ran on the single-domain path");
    if (ran(phase) && t.endUs[p] < t.startUs[p])
      fail("phase %s ends (%.1f us) before it starts (%.1f us)", ncclMoePhaseName(phase), t.endUs[p], t.startUs[p]);
    if (env.rank == 0 && ran(phase))
      std::printf("rank 0: phase %-17s %9.1f .. %9.1f us\n", ncclMoePhaseName(phase), t.startUs[p], t.endUs[p]);
  }
  // (later phase, its start or end) never before (earlier phase, its start or end).
  struct Order {
    ncclMoePhase_t later;
    bool laterEnd;
    ncclMoePhase_t earlier;
    bool earlierEnd;
    bool twoHopOnly;
  };
  const Order orders[] = {
      {ncclMoePhaseLayoutScan, false, ncclMoePhaseLayoutPublish, true, false},
      {ncclMoePhaseLayoutNetwork, false, ncclMoePhaseLayoutPublish, true, true},
      {ncclMoePhaseLayoutScan, false, ncclMoePhaseLayoutNetwork, true, true},
      // Dispatch: stage, then the network chunks beside the direct pull; the forwarded rows end
      // after the last chunk has landed.
      {ncclMoePhaseDispatchNetwork, false, ncclMoePhaseDispatchStage, true, true},
      {ncclMoePhaseDispatchNvlink, false, ncclMoePhaseDispatchStage, true, true},
      {ncclMoePhaseDispatchForward, false, ncclMoePhaseDispatchNvlink, true, true},
      {ncclMoePhaseDispatchForward, true, ncclMoePhaseDispatchNetwork, true, true},
      // Combine: the network starts after the first collection, the sum after the last chunk.
      {ncclMoePhaseCombineNetwork, false, ncclMoePhaseCombineNvlink, false, true},
      {ncclMoePhaseCombineReduce, false, ncclMoePhaseCombineNetwork, true, true},
      {ncclMoePhaseCombineReduce, false, ncclMoePhaseCombineNvlink, true, true},
  };
  for (const Order& order : orders) {
    if (order.twoHopOnly && !twoHop) continue;
    if (!ran(order.later) || !ran(order.earlier)) continue;  // which ran is checked above
    const float later = order.laterEnd ? t.endUs[order.later] : t.startUs[order.later];
    const float earlier = order.earlierEnd ? t.endUs[order.earlier] : t.startUs[order.earlier];
    if (later + kEventSlackUs < earlier)
      fail("phase %s (%s %.1f us) precedes phase %s (%s %.1f us)", ncclMoePhaseName(order.later),
           order.laterEnd ? "end" : "start", later, ncclMoePhaseName(order.earlier),
           order.earlierEnd ? "end" : "start", earlier);
  }
}

// How long the call that started at `start` took to fail: the first detection (a kernel's wait, or
// the network watchdog on the host) ends every wait of the rank, so within the timeout plus slack,
// not one timeout per wait in turn (two-hop: was 2x).
void expectFailedInTime(const Options& o, const char* what, std::chrono::steady_clock::time_point start) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (seconds > o.timeoutMs / 1000.0 + 1.0) fail("the %s took %.2f s to fail; the timeout is %d ms", what, seconds, o.timeoutMs);
}

// The dead-rank scenarios: the silent rank stops before the layout (default), the dispatch
// (deadInDispatch), the combine (deadInCombine) or the destroy (deadInDestroy); every other rank must
// fail that call with a timeout naming the silent peer, within the timeout plus slack, and its
// destroy must complete. *comm is destroyed here (set to NULL) in the destroy scenario.
int runDeadRank(const Options& o, const RankLayout& env, ncclMoeComm_t* commInOut, cudaStream_t stream) {
  ncclMoeComm_t comm = *commInOut;
  auto staySilent = [&] {
    std::printf("rank %d: staying silent\n", env.rank);
    std::fflush(stdout);
    usleep(static_cast<useconds_t>(o.timeoutMs) * 3000u);
    return 0;
  };
  const bool laterThanLayout = o.deadInDispatch || o.deadInCombine || o.deadInDestroy;
  if (env.rank == o.deadRank && !laterThanLayout) return staySilent();
  std::mt19937_64 rng(o.seed);
  Group g = makeGroup(o, env.size, rng);
  const RankRouting& mine = g.routings[env.rank];
  TopkOnDevice topk(mine, o.topk);
  const ncclMoeRouting_t& routing = topk.routing;
  ncclMoeLayoutOptions_t options = NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER;
  ncclMoeHandle_t handle = nullptr;
  if (ncclMoeLayoutCreate(comm, &routing, &options, &handle, stream) != ncclSuccess) {
    fail("ncclMoeLayoutCreate: %s", ncclMoeGetLastError(comm));
    return 1;
  }
  int64_t rows = 0;
  ncclResult_t result = ncclMoeHandleGetCounts(handle, &rows, nullptr, nullptr);
  std::string message = ncclMoeGetLastError(comm);
  if (laterThanLayout) {
    if (result != ncclSuccess) {
      fail("the layout must complete before the rank dies: %s", message.c_str());
      return 1;
    }
    if (env.rank == o.deadRank && o.deadInDispatch) return staySilent();
    DeviceBuffer x(g.x[env.rank].bytes().size()), recv(static_cast<size_t>(rows) * o.hidden * 2 + 2),
        out(g.x[env.rank].bytes().size() + 2);
    x.upload(g.x[env.rank].bytes().data(), g.x[env.rank].bytes().size(), kCopyStream);
    ncclMoeDispatchArgs_t d = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
    d.x = x.get();
    d.recvRows = rows;
    d.recvX = recv.get();
    auto start = std::chrono::steady_clock::now();
    if (ncclMoeDispatch(comm, handle, &d, stream) != ncclSuccess) {
      fail("ncclMoeDispatch: %s", ncclMoeGetLastError(comm));
      return 1;
    }
    CUDA_OK(cudaStreamSynchronize(stream));  // returns once the waits have timed out (or done)
    if (o.deadInDispatch) expectFailedInTime(o, "dispatch", start);
    if (o.deadInCombine || o.deadInDestroy) {
      if (ncclMoeCommGetAsyncError(comm, &result) != ncclSuccess || result != ncclSuccess) {
        fail("the dispatch must complete before the rank dies: %s", ncclMoeGetLastError(comm));
        return 1;
      }
      if (env.rank == o.deadRank && o.deadInCombine) return staySilent();
      ncclMoeCombineArgs_t c = NCCL_MOE_COMBINE_ARGS_INITIALIZER;
      c.x = recv.get();
      c.rows = rows;
      c.out = out.get();
      start = std::chrono::steady_clock::now();
      if (ncclMoeCombine(comm, handle, &c, stream) != ncclSuccess) {
        fail("ncclMoeCombine: %s", ncclMoeGetLastError(comm));
        return 1;
      }
      CUDA_OK(cudaStreamSynchronize(stream));
      if (o.deadInCombine) expectFailedInTime(o, "combine", start);
    }
    if (o.deadInDestroy) {
      ncclMoeHandleDestroy(handle);
      if (env.rank == o.deadRank) return staySilent();
      // Every call succeeded; the silent rank never joins the destroy's closing exchange: it must
      // still complete here, with an error naming the timeout, within the timeout plus slack.
      start = std::chrono::steady_clock::now();
      result = ncclMoeCommDestroy(comm);
      *commInOut = nullptr;
      message = ncclMoeGetLastError(nullptr);
      expectFailedInTime(o, "destroy", start);
      if (result != ncclRemoteError || message.find("timed out") == std::string::npos)
        fail("destroy without rank %d: expected a timeout, got %d: %s", o.deadRank, result, message.c_str());
      else
        std::printf("rank %d: destroy completed without the silent rank: %s\n", env.rank, message.c_str());
      return gFailures == 0 ? 0 : 1;
    }
    if (ncclMoeCommGetAsyncError(comm, &result) != ncclSuccess) {
      fail("ncclMoeCommGetAsyncError: %s", ncclMoeGetLastError(comm));
      return 1;
    }
    message = ncclMoeGetLastError(comm);
  }
  const std::string peer = "peer " + std::to_string(o.deadRank);
  // Inside the silent rank's domain the wait names it; elsewhere a rank waits for a domain peer
  // whose network phase with the silent rank never completes, or hears from its rail peer that
  // the rail peer had failed (timed out on the silent rank) before sending.
  const bool sameDomain = env.rank / env.localSize == o.deadRank / env.localSize;
  const bool reported = message.find("timed out") != std::string::npos ||
                        (!sameDomain && message.find("had already failed") != std::string::npos);
  if (result != ncclRemoteError || !reported || (sameDomain && message.find(peer) == std::string::npos)) {
    fail("expected a failure report naming %s (or, in another domain, a failed rail peer), got %d: %s", peer.c_str(),
         result, message.c_str());
    return 1;
  }
  std::printf("rank %d: timeout reported as expected: %s\n", env.rank, message.c_str());
  ncclMoeHandleDestroy(handle);
  return 0;
}

int main(int argc, char** argv) {
  Options o;
  if (const int parsed = parse(argc, argv, &o); parsed != 0) return parsed == 1 ? 0 : 2;
  RankBootstrap setup;
  ncclComm_t nccl = nullptr;
  if (const int status = harness::startRank("rank-check", &setup, &nccl); status != 0) return status;
  // The group's ranks; under nccl-moe-run the local size is the NVLink domain's.
  const RankLayout& env = setup.layout;
  gRank = env.rank;
  ncclMoeConfig_t config = groupConfig(o.experts, o.hidden, o.tokens, o.topk, o.sms, o.timeoutMs);
  config.dataType = o.fp32 ? ncclFloat32 : ncclBfloat16;
  config.fp8Dispatch = o.fp8;
  config.fp8PowerOfTwoScales = o.pow2;
  config.combineWindowTokens = o.combineWindow;
  ncclMoeComm_t comm = nullptr;
  if (o.mismatch) {
    if (env.rank == 1) config.maxTokensPerRank += 64;
    const ncclResult_t created = ncclMoeCommCreate(nccl, &config, &comm);
    const std::string message = ncclMoeGetLastError(nullptr);
    const bool refused = created == ncclInvalidUsage && message.find("maxTokensPerRank differs") != std::string::npos;
    std::printf("rank %d: %s: %s\n", env.rank, refused ? "mismatched configuration refused" : "FAIL", message.c_str());
    ncclCommDestroy(nccl);
    return refused ? 0 : 1;
  }
  if (o.deadInCreate) {
    // A rank that never reaches ncclMoeCommCreate: the others must return ncclRemoteError from it
    // within the timeout (plus slack for the set-up before the first exchange), not hang.
    if (env.rank == o.deadRank) {
      std::printf("rank %d: staying silent\n", env.rank);
      std::fflush(stdout);
      usleep(static_cast<useconds_t>(o.timeoutMs) * 3000u);
      return 0;
    }
    const auto start = std::chrono::steady_clock::now();
    const ncclResult_t created = ncclMoeCommCreate(nccl, &config, &comm);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string message = ncclMoeGetLastError(nullptr);
    const bool ok = created == ncclRemoteError && comm == nullptr && message.find("timed out") != std::string::npos &&
                    seconds < o.timeoutMs / 1000.0 + 1.0;
    std::printf("rank %d: %s after %.2f s: %s\n", env.rank, ok ? "create timed out" : "FAIL", seconds, message.c_str());
    ncclCommAbort(nccl);
    return ok ? 0 : 1;
  }
  if (o.badConfigRank >= 0 || o.noTopologyRank >= 0 || o.otherEngineRank >= 0) {
    // One rank cannot start (or would run other set-up exchanges): every rank must return the same
    // ncclInvalidUsage naming that rank, well inside the launcher's limit (before: the others hung).
    if (env.rank == o.badConfigRank) config.numExperts = NCCL_MOE_UNDEF_INT;
    if (env.rank == o.noTopologyRank) setenv("NCCL_MOE_TOPOLOGY", "0", 1);
    if (env.rank == o.otherEngineRank) {
      const char* engine = std::getenv("NCCL_MOE_LAYOUT_ENGINE");
      setenv("NCCL_MOE_LAYOUT_ENGINE", engine != nullptr && std::string(engine) == "1" ? "0" : "1", 1);
    }
    const ncclResult_t created = ncclMoeCommCreate(nccl, &config, &comm);
    const std::string message = ncclMoeGetLastError(nullptr);
    const std::string named = o.badConfigRank >= 0    ? "rank " + std::to_string(o.badConfigRank) + " cannot create its MoE communicator"
                              : o.noTopologyRank >= 0 ? "NCCL_MOE_TOPOLOGY differs between ranks"
                                                      : "NCCL_MOE_LAYOUT_ENGINE differs between ranks";
    const bool refused = created == ncclInvalidUsage && comm == nullptr && message.find(named) != std::string::npos;
    std::printf("rank %d: %s: %s\n", env.rank, refused ? "refused on every rank" : "FAIL", message.c_str());
    ncclCommDestroy(nccl);
    return refused ? 0 : 1;
  }
  if (ncclMoeCommCreate(nccl, &config, &comm) != ncclSuccess) {
    std::fprintf(stderr, "rank %d: ncclMoeCommCreate: %s\n", env.rank, ncclMoeGetLastError(nullptr));
    return 1;
  }
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  if (o.phaseTimes && ncclMoeCommSetPhaseTiming(comm, 1) != ncclSuccess)
    fail("ncclMoeCommSetPhaseTiming: %s", ncclMoeGetLastError(comm));

  int rc = 0;
  if (o.deadRank >= 0 && !o.deadInReplay) {
    rc = runDeadRank(o, env, &comm, stream);
    // The silent peer never joins a collective again: tear down without one.
    if (env.rank != o.deadRank) {
      if (comm != nullptr) ncclMoeCommDestroy(comm);
      ncclCommAbort(nccl);
    }
    return rc != 0 || gFailures != 0;
  }
  Check check(o, env, comm, stream);
  ncclMoeHandle_t handle = nullptr;
  if (o.stale) {
    runStale(o, env, nccl, config, &comm, stream);
    // The re-created communicator must move data like the first one did.
    Check again(o, env, comm, stream);
    for (int it = 0; it < o.iters && gFailures == 0; ++it) again.run(it, &handle);
  } else if (o.resize) {
    check.run(0, &handle);
    if (gFailures == 0) runResize(o, env, comm, stream, &handle);
  } else if (o.graphReplays > 0)
    runGraph(o, env, comm, stream, &handle);
  else if (o.failedLayout) {
    check.run(0, &handle);
    if (gFailures == 0) runFailedLayout(o, env, comm, stream, handle);
    for (int it = 1; it < o.iters && gFailures == 0; ++it) check.run(it, &handle);  // redone on the same handle
  } else
    for (int it = 0; it < o.iters && gFailures == 0; ++it) check.run(it, &handle);  // later iterations reuse the handle
  if (o.phaseTimes && gFailures == 0) checkPhaseTimes(env, comm);
  if (o.deadInReplay) {
    // The silent rank never joins a collective again; the others' communicator failed: tear down
    // without a collective, and check that destroy completes.
    if (env.rank == o.deadRank) return gFailures == 0 ? 0 : 1;
    if (handle) ncclMoeHandleDestroy(handle);
    if (ncclMoeCommDestroy(comm) != ncclSuccess) fail("ncclMoeCommDestroy after the failed replay: %s",
                                                      ncclMoeGetLastError(nullptr));
    ncclCommAbort(nccl);
    return harness::rankVerdict(env.rank, gFailures);
  }
  if (handle) ncclMoeHandleDestroy(handle);
  if (ncclMoeCommDestroy(comm) != ncclSuccess) fail("ncclMoeCommDestroy: %s", ncclMoeGetLastError(nullptr));
  ncclCommDestroy(nccl);
  cudaStreamDestroy(stream);
  return harness::rankVerdict(env.rank, gFailures);
}

}  // namespace
}  // namespace nccl_moe

// A device buffer's failed CUDA call (tools/harness throws) ends the rank as CUDA_OK does.
int main(int argc, char** argv) { return nccl_moe::harness::runRankProgram(nccl_moe::main, argc, argv, nccl_moe::rank_check::gRank); }
