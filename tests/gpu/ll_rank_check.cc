// nccl-moe-ll-rank-check: one rank of a low-latency (LL) correctness run on the virtual cluster,
// started by nccl-moe-run (docs/low_latency.md). Every rank builds the whole group's inputs from the
// same seed, runs the CPU oracle (reference/low_latency.h) for the group and compares its own
// outputs bit for bit: recvCount, the rows of each segment (BF16 or FP8 codes), the FP8 scale
// planes, recvSrcInfo, and the weighted and unweighted combine. Outputs are poisoned before every
// call; whatever lies past a segment's count must stay poisoned. Scenarios: plain calls, split
// send/receive halves (two outstanding, work between the halves), one CUDA graph replayed with
// fresh routing, a bad routing or a K that differs (reported on every rank, no output written), and a
// silent rank (the others time out naming it, or with several domains naming a peer and the phase).
// With several NVLink domains (nccl-moe-run --nodes, NCCL_MOE_DOMAIN_SIZE) the calls run the
// two-hop path and the oracle sums in its domain order (docs/low_latency.md section 5.3).
// Exit code 0 when every check passed.
#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "nccl_moe.h"
#include "nccl_moe_bootstrap.h"
#include "reference/low_latency.h"
#include "reference/random_routing.h"
#include "tools/common/flags.h"
#include "tools/harness/device.h"
#include "tools/harness/rank_start.h"
#include "rank_check_support.h"

namespace nccl_moe {
namespace {

struct Options {
  int experts = 16;
  int hidden = 256;
  int tokens = 32;       // lowLatencyMaxTokens (N)
  int topk = 4;          // K of the calls
  int maxTopk = 0;       // the communicator's maxTopk (0: K)
  int fp8 = 0;           // lowLatencyFp8
  bool uneven = false;   // T differs per rank, from 0 to N
  int zeroRank = -1;     // this rank has T = 0
  double masked = 0.0;
  double skew = 0.0;     // large: every token to the same few experts
  int iters = 2;
  bool split = false;    // send halves, other work, then receive halves (two outstanding)
  int graphReplays = 0;  // capture dispatch + combine once, replay with fresh routing
  bool graphSplit = false;  // the graph holds the split halves
  int badRank = -1;      // an expert id out of range on this rank
  int dupRank = -1;      // an expert id twice in one token on this rank
  int topkRank = -1;     // this rank passes K - 1
  int deadRank = -1;     // this rank never calls the dispatch
  int sms = 8;
  int timeoutMs = 60000;
  uint64_t seed = 1;
};

tools::FlagSet flagsOf(Options* o) {
  tools::FlagSet flags({"nccl-moe-ll-rank-check", "nccl-moe-run -np R [--nodes M] nccl-moe-ll-rank-check [flags]",
                        "One rank of a low-latency correctness run: compares every output with the CPU oracle bit\n"
                        "for bit, or plays one failure scenario (tests/gpu/test_low_latency_cluster.cc).",
                        tools::versionText(NCCL_MOE_VERSION_CODE)});
  constexpr long long kNoRank = -1, kRanks = 1 << 16;
  flags.integer("--experts", "experts E", &o->experts, 1, 1 << 20);
  flags.integer("--hidden", "hidden size H", &o->hidden, 1, 1 << 20);
  flags.integer("--tokens", "lowLatencyMaxTokens N", &o->tokens, 1, 1024);
  flags.integer("--topk", "K of the calls", &o->topk, 1, 1 << 10);
  flags.integer("--max-topk", "the communicator's maxTopk (0: K)", &o->maxTopk, 0, 1 << 10);
  flags.integer("--fp8", "lowLatencyFp8: 0 BF16, 1 FP8, 2 FP8 power-of-two scales", &o->fp8, 0, 2);
  flags.toggle("--uneven", "T differs between ranks (0 to N)", &o->uneven);
  flags.integer("--zero-rank", "this rank has T = 0 (-1: none)", &o->zeroRank, kNoRank, kRanks);
  flags.number("--masked", "fraction of masked slots", &o->masked, 0.0, 1.0);
  flags.number("--skew", "routing skew (0: uniform)", &o->skew, 0.0, 1000.0);
  flags.integer("--iters", "calls per scenario", &o->iters, 1, 1000);
  flags.toggle("--split", "send halves, work, receive halves (two outstanding)", &o->split);
  flags.integer("--graph", "CUDA graph replays with fresh routing (0: eager)", &o->graphReplays, 0, 10000);
  flags.toggle("--graph-split", "the graph holds the split halves", &o->graphSplit);
  flags.integer("--bad-rank", "an expert id out of range on this rank (-1: none)", &o->badRank, kNoRank, kRanks);
  flags.integer("--dup-rank", "an expert id twice in a token on this rank (-1: none)", &o->dupRank, kNoRank, kRanks);
  flags.integer("--topk-rank", "this rank passes K - 1 (-1: none)", &o->topkRank, kNoRank, kRanks);
  flags.integer("--dead-rank", "this rank never calls the dispatch (-1: none)", &o->deadRank, kNoRank, kRanks);
  flags.integer("--sms", "SM budget per op", &o->sms, 1, 1024);
  flags.integer("--timeout-ms", "the communicator's timeout", &o->timeoutMs, 1, INT32_MAX);
  flags.integer("--seed", "random seed", &o->seed, 0, LLONG_MAX);
  return flags;
}

using namespace rank_check;
int gRanksPerDomain = 0;  // D of the communicator (ncclMoeCommGetInfo); the oracle's combine order follows it


using harness::checkCuda;

constexpr uint8_t kPoison = 0xAB;

// The whole group's inputs of one call, the same on every rank.
struct Group {
  LowLatencyShape shape;
  std::vector<RankRouting> routings;
  std::vector<HostRows> x;
  std::vector<std::vector<float>> weights;
};

Group makeGroup(const Options& o, int ranks, uint64_t seed, bool fixedTokens) {
  std::mt19937_64 rng(seed);
  Group g;
  const int perDomain = gRanksPerDomain > 0 ? gRanksPerDomain : ranks;
  g.shape = LowLatencyShape{ranks, perDomain, o.experts, o.hidden, o.maxTopk > 0 ? o.maxTopk : o.topk, o.tokens,
                            o.fp8 != 0, o.fp8 == 2};
  RoutingRecipe recipe;
  recipe.topk = o.topk;
  recipe.experts = o.experts;
  recipe.skew = o.skew;
  recipe.maskedFraction = o.masked;
  recipe.withProbs = false;
  std::uniform_int_distribution<int> tokens(0, o.tokens);
  std::uniform_real_distribution<float> weight(-1.0f, 1.0f);
  for (int r = 0; r < ranks; ++r) {
    recipe.numTokens = r == o.zeroRank ? 0 : o.uneven && !fixedTokens ? tokens(rng) : o.tokens;
    g.routings.push_back(randomTopkRouting(recipe, rng));
    g.x.push_back(randomRows(ElementType::kBf16, recipe.numTokens, o.hidden, 4.0f, rng));
    std::vector<float> w(static_cast<size_t>(recipe.numTokens) * o.topk);
    for (float& v : w) v = weight(rng);
    g.weights.push_back(std::move(w));
  }
  return g;
}

// Expert outputs of every rank in its dispatch layout: random rows below the counts, zeros past
// them (never read).
std::vector<HostRows> makeExpertOutputs(const Group& g, const std::vector<LowLatencyRankOutput>& dispatched,
                                        uint64_t seed) {
  std::vector<HostRows> y;
  const int L = g.shape.localExperts();
  const int64_t P = g.shape.segmentRows();
  for (int d = 0; d < g.shape.ranks; ++d) {
    std::mt19937_64 rng(seed * 7919ull + d);
    HostRows rows(ElementType::kBf16, L * P, g.shape.hidden);
    for (int l = 0; l < L; ++l) {
      const HostRows part = randomRows(ElementType::kBf16, dispatched[d].layout.counts[l], g.shape.hidden, 3.0f, rng);
      std::memcpy(rows.row(l * P), part.bytes().data(), part.bytes().size());
    }
    y.push_back(std::move(rows));
  }
  return y;
}

// One rank's device buffers of one dispatch and one combine.
struct Buffers {
  DeviceBuffer x, ids, recvX, recvScales, recvCount, recvSrcInfo, y, weights, out, outUnweighted;

  Buffers(const LowLatencyShape& s, int topk)
      : x(static_cast<size_t>(s.maxTokens) * s.hidden * 2),
        ids(static_cast<size_t>(s.maxTokens) * topk * 8),
        recvX(lowLatencyOutputSizes(s).xBytes),
        recvScales(lowLatencyOutputSizes(s).scaleFloats * 4),
        recvCount(static_cast<size_t>(s.localExperts()) * 4),
        recvSrcInfo(lowLatencyOutputSizes(s).srcInfoInts * 4),
        y(lowLatencyOutputSizes(s).rows * s.hidden * 2),
        weights(static_cast<size_t>(s.maxTokens) * topk * 4),
        out(static_cast<size_t>(s.maxTokens) * s.hidden * 2),
        outUnweighted(static_cast<size_t>(s.maxTokens) * s.hidden * 2) {}

  void poison() {
    for (DeviceBuffer* b : {&recvX, &recvScales, &recvCount, &recvSrcInfo, &out, &outUnweighted}) b->fill(kPoison, kCopyStream);
  }
  void uploadInputs(const Group& g, int me) {
    x.upload(g.x[me].bytes().data(), g.x[me].bytes().size(), kCopyStream);
    ids.upload(g.routings[me].topkIdx.data(), g.routings[me].topkIdx.size() * 8, kCopyStream);
    weights.upload(g.weights[me].data(), g.weights[me].size() * 4, kCopyStream);
  }

  ncclMoeLowLatencyDispatchArgs_t dispatchArgs(const Group& g, int me, int topk) {
    ncclMoeLowLatencyDispatchArgs_t a = NCCL_MOE_LOW_LATENCY_DISPATCH_ARGS_INITIALIZER;
    a.numTokens = g.routings[me].numTokens;
    a.topk = topk;
    a.x = x.get();
    a.topkIdx = ids.get<int64_t>();
    a.recvX = recvX.get();
    a.recvScales = g.shape.fp8 ? recvScales.get<float>() : nullptr;
    a.recvCount = recvCount.get<int32_t>();
    a.recvSrcInfo = recvSrcInfo.get<int32_t>();
    return a;
  }
  ncclMoeLowLatencyCombineArgs_t combineArgs(const Group& g, int me, bool weighted) {
    ncclMoeLowLatencyCombineArgs_t a = NCCL_MOE_LOW_LATENCY_COMBINE_ARGS_INITIALIZER;
    a.numTokens = g.routings[me].numTokens;
    a.topk = g.routings[me].topk;
    a.y = y.get();
    a.recvCount = recvCount.get<int32_t>();
    a.recvSrcInfo = recvSrcInfo.get<int32_t>();
    a.topkIdx = ids.get<int64_t>();
    a.weights = weighted ? weights.get<float>() : nullptr;
    a.out = weighted ? out.get() : outUnweighted.get();
    return a;
  }
};

template <class T>
std::vector<T> asVector(const std::vector<uint8_t>& bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

bool allPoison(const uint8_t* p, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i)
    if (p[i] != kPoison) return false;
  return true;
}

// This rank's dispatch outputs against the oracle's (rows, scales and source info below the
// counts; poison past them).
void checkDispatch(const char* what, const Group& g, const LowLatencyRankOutput& want, Buffers& b) {
  const LowLatencyShape& s = g.shape;
  const int L = s.localExperts(), B = s.scaleBlocks();
  const int64_t P = s.segmentRows();
  const std::vector<int32_t> counts = asVector<int32_t>(download(b.recvCount));
  if (counts != want.layout.counts) {
    fail("%s: recvCount differs from the oracle (segment 0: %d, want %d)", what, counts[0], want.layout.counts[0]);
    return;
  }
  const std::vector<uint8_t> rows = download(b.recvX), info = download(b.recvSrcInfo);
  const std::vector<uint8_t> scales = s.fp8 ? download(b.recvScales) : std::vector<uint8_t>();
  const size_t rowBytes = static_cast<size_t>(s.hidden) * (s.fp8 ? 1 : 2);
  for (int l = 0; l < L; ++l) {
    const int64_t first = l * P, used = counts[l];
    if (std::memcmp(rows.data() + first * rowBytes, want.x.row(first), used * rowBytes) != 0)
      fail("%s: segment %d rows differ from the oracle", what, l);
    if (!allPoison(rows.data() + (first + used) * rowBytes, (P - used) * rowBytes))
      fail("%s: segment %d rows past its count %lld were written", what, l, (long long)used);
    if (std::memcmp(info.data() + first * 12, want.layout.srcInfo.data() + first * 3, used * 12) != 0)
      fail("%s: segment %d source info differs from the oracle", what, l);
    if (!allPoison(info.data() + (first + used) * 12, (P - used) * 12))
      fail("%s: segment %d source info past its count was written", what, l);
    for (int blk = 0; s.fp8 && blk < B; ++blk) {
      const int64_t plane = lowLatencyScaleIndex(s, l, 0, blk);
      if (std::memcmp(scales.data() + plane * 4, want.scales.data() + plane, used * 4) != 0)
        fail("%s: segment %d block %d scales differ from the oracle", what, l, blk);
      if (!allPoison(scales.data() + (plane + used) * 4, (s.scalePlaneRows() - used) * 4))
        fail("%s: segment %d block %d scales past the count were written", what, l, blk);
    }
  }
}

void checkCombine(const char* what, const HostRows& want, const DeviceBuffer& out, int tokens) {
  const std::vector<uint8_t> got = download(out);
  const size_t bytes = want.bytes().size();
  if (std::memcmp(got.data(), want.bytes().data(), bytes) != 0) {
    size_t at = 0;
    while (got[at] == want.bytes()[at]) ++at;
    fail("%s: token %zu differs from the oracle at byte %zu", what, at / want.rowBytes(), at % want.rowBytes());
  }
  if (!allPoison(got.data() + bytes, got.size() - bytes)) fail("%s: rows past T=%d were written", what, tokens);
}

void checkAsync(ncclMoeComm_t comm, const char* where) {
  ncclResult_t async = ncclSuccess;
  if (ncclMoeCommGetAsyncError(comm, &async) != ncclSuccess || async != ncclSuccess)
    fail("%s: asynchronous error %d: %s", where, async, ncclMoeGetLastError(comm));
}

// The oracle's outputs for one group and the expert outputs its combine uses.
struct Expected {
  std::vector<LowLatencyRankOutput> dispatched;
  std::vector<HostRows> y, weighted, unweighted;
};

bool expect(const Group& g, uint64_t seed, Expected* e) {
  Status s = lowLatencyDispatch(g.shape, g.routings, g.x, &e->dispatched);
  std::vector<LowLatencyLayout> layouts;
  if (s.isOk()) {
    e->y = makeExpertOutputs(g, e->dispatched, seed);
    for (const LowLatencyRankOutput& d : e->dispatched) layouts.push_back(d.layout);
    s = lowLatencyCombine(g.shape, g.routings, layouts, e->y, &g.weights, &e->weighted);
  }
  if (s.isOk()) s = lowLatencyCombine(g.shape, g.routings, layouts, e->y, nullptr, &e->unweighted);
  if (!s.isOk()) fail("oracle: %s", s.message().c_str());
  return s.isOk();
}

class Run {
 public:
  Run(const Options& o, const RankLayout& env, ncclMoeComm_t comm, cudaStream_t stream)
      : o_(o), env_(env), comm_(comm), stream_(stream) {}

  // Plain calls (or split halves): dispatch, then the weighted and the unweighted combine.
  void eager(int iteration) {
    const Group g = makeGroup(o_, env_.size, o_.seed * 1000003ull + iteration, false);
    Expected e;
    if (!expect(g, o_.seed + iteration, &e)) return;
    const int me = env_.rank;
    Buffers b(g.shape, o_.topk);
    b.uploadInputs(g, me);
    b.y.upload(e.y[me].bytes().data(), e.y[me].bytes().size(), kCopyStream);
    b.poison();
    ncclMoeLowLatencyDispatchArgs_t d = b.dispatchArgs(g, me, o_.topk);
    if (!call(ncclMoeLowLatencyDispatch(comm_, &d, stream_), "ncclMoeLowLatencyDispatch")) return;
    ncclMoeLowLatencyCombineArgs_t weighted = b.combineArgs(g, me, true), plain = b.combineArgs(g, me, false);
    if (!call(ncclMoeLowLatencyCombine(comm_, &weighted, stream_), "ncclMoeLowLatencyCombine (weighted)")) return;
    if (!call(ncclMoeLowLatencyCombine(comm_, &plain, stream_), "ncclMoeLowLatencyCombine (unweighted)")) return;
    checkCuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    checkAsync(comm_, "plain calls");
    checkDispatch("dispatch", g, e.dispatched[me], b);
    checkCombine("weighted combine", e.weighted[me], b.out, g.routings[me].numTokens);
    checkCombine("unweighted combine", e.unweighted[me], b.outUnweighted, g.routings[me].numTokens);
  }

  // Two operations of each kind outstanding at once, other work on the stream between the halves,
  // and the refusals of the half order (nothing enqueued, outputs untouched).
  void split(int iteration) {
    const Group a = makeGroup(o_, env_.size, o_.seed * 1000003ull + 2 * iteration, false);
    const Group c = makeGroup(o_, env_.size, o_.seed * 1000003ull + 2 * iteration + 1, false);
    Expected ea, ec;
    if (!expect(a, o_.seed + 2 * iteration, &ea) || !expect(c, o_.seed + 2 * iteration + 1, &ec)) return;
    const int me = env_.rank;
    Buffers ba(a.shape, o_.topk), bc(c.shape, o_.topk);
    ba.uploadInputs(a, me);
    bc.uploadInputs(c, me);
    ba.y.upload(ea.y[me].bytes().data(), ea.y[me].bytes().size(), kCopyStream);
    bc.y.upload(ec.y[me].bytes().data(), ec.y[me].bytes().size(), kCopyStream);
    ba.poison();
    bc.poison();
    DeviceBuffer work(64 << 20);
    if (ncclMoeLowLatencyDispatchRecv(comm_, stream_) != ncclInvalidUsage)
      fail("a dispatch receive half with no send half outstanding must be refused");
    ncclMoeLowLatencyDispatchArgs_t da = ba.dispatchArgs(a, me, o_.topk), dc = bc.dispatchArgs(c, me, o_.topk);
    if (!call(ncclMoeLowLatencyDispatchSend(comm_, &da, stream_), "dispatch send (first)")) return;
    if (!call(ncclMoeLowLatencyDispatchSend(comm_, &dc, stream_), "dispatch send (second)")) return;
    if (ncclMoeLowLatencyDispatchSend(comm_, &da, stream_) != ncclInvalidUsage)
      fail("a third outstanding dispatch send half must be refused");
    if (ncclMoeLowLatencyDispatch(comm_, &da, stream_) != ncclInvalidUsage)
      fail("a plain dispatch while send halves are outstanding must be refused");
    // The inputs may change once the send halves have run: the receive halves must not read them.
    checkCuda(cudaMemsetAsync(work.get(), 1, work.bytes(), stream_), "work between the halves");
    checkCuda(cudaMemsetAsync(ba.x.get(), 0x11, ba.x.bytes(), stream_), "overwrite x");
    checkCuda(cudaMemsetAsync(ba.ids.get(), 0xFF, ba.ids.bytes(), stream_), "overwrite ids");
    if (!call(ncclMoeLowLatencyDispatchRecv(comm_, stream_), "dispatch receive (first)")) return;
    if (!call(ncclMoeLowLatencyDispatchRecv(comm_, stream_), "dispatch receive (second)")) return;
    checkCuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    checkAsync(comm_, "split dispatch");
    checkDispatch("split dispatch (first)", a, ea.dispatched[me], ba);
    checkDispatch("split dispatch (second)", c, ec.dispatched[me], bc);
    ba.uploadInputs(a, me);  // the ids again (overwritten above)

    ncclMoeLowLatencyCombineArgs_t ca = ba.combineArgs(a, me, true), cc = bc.combineArgs(c, me, false);
    if (!call(ncclMoeLowLatencyCombineSend(comm_, &ca, stream_), "combine send (first)")) return;
    if (!call(ncclMoeLowLatencyCombineSend(comm_, &cc, stream_), "combine send (second)")) return;
    if (ncclMoeLowLatencyCombineSend(comm_, &ca, stream_) != ncclInvalidUsage)
      fail("a third outstanding combine send half must be refused");
    checkCuda(cudaMemsetAsync(work.get(), 2, work.bytes(), stream_), "work between the halves");
    checkCuda(cudaMemsetAsync(ba.y.get(), 0x22, ba.y.bytes(), stream_), "overwrite y");
    checkCuda(cudaMemsetAsync(ba.weights.get(), 0x33, ba.weights.bytes(), stream_), "overwrite weights");
    checkCuda(cudaMemsetAsync(ba.ids.get(), 0xFF, ba.ids.bytes(), stream_), "overwrite ids");
    if (!call(ncclMoeLowLatencyCombineRecv(comm_, stream_), "combine receive (first)")) return;
    if (!call(ncclMoeLowLatencyCombineRecv(comm_, stream_), "combine receive (second)")) return;
    if (ncclMoeLowLatencyCombineRecv(comm_, stream_) != ncclInvalidUsage)
      fail("a combine receive half with none outstanding must be refused");
    checkCuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    checkAsync(comm_, "split combine");
    checkCombine("split weighted combine", ea.weighted[me], ba.out, a.routings[me].numTokens);
    checkCombine("split unweighted combine", ec.unweighted[me], bc.outUnweighted, c.routings[me].numTokens);
  }

  // One graph of dispatch + weighted combine (plain calls, or the four halves), replayed with fresh
  // routing, rows, expert outputs and weights at the same addresses each time.
  void graph() {
    const int me = env_.rank;
    Group g = makeGroup(o_, env_.size, o_.seed * 31337ull, true);
    Buffers b(g.shape, o_.topk);
    auto enqueue = [&] {
      ncclMoeLowLatencyDispatchArgs_t d = b.dispatchArgs(g, me, o_.topk);
      ncclMoeLowLatencyCombineArgs_t c = b.combineArgs(g, me, true);
      if (!o_.graphSplit)
        return ncclMoeLowLatencyDispatch(comm_, &d, stream_) == ncclSuccess &&
               ncclMoeLowLatencyCombine(comm_, &c, stream_) == ncclSuccess;
      return ncclMoeLowLatencyDispatchSend(comm_, &d, stream_) == ncclSuccess &&
             ncclMoeLowLatencyDispatchRecv(comm_, stream_) == ncclSuccess &&
             ncclMoeLowLatencyCombineSend(comm_, &c, stream_) == ncclSuccess &&
             ncclMoeLowLatencyCombineRecv(comm_, stream_) == ncclSuccess;
    };
    cudaGraph_t graph = nullptr;
    checkCuda(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
    const bool captured = enqueue();
    checkCuda(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
    if (!captured) {
      fail("capture: %s", ncclMoeGetLastError(comm_));
      return;
    }
    cudaGraphExec_t exec = nullptr;
    checkCuda(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
    for (int replay = 0; replay < o_.graphReplays && gFailures == 0; ++replay) {
      g = makeGroup(o_, env_.size, o_.seed * 31337ull + replay, true);
      Expected e;
      if (!expect(g, o_.seed * 7ull + replay, &e)) break;
      b.uploadInputs(g, me);
      b.y.upload(e.y[me].bytes().data(), e.y[me].bytes().size(), kCopyStream);
      b.poison();
      checkCuda(cudaGraphLaunch(exec, stream_), "cudaGraphLaunch");
      checkCuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
      checkAsync(comm_, "graph replay");
      const std::string what = "graph replay " + std::to_string(replay);
      checkDispatch(what.c_str(), g, e.dispatched[me], b);
      checkCombine((what + " combine").c_str(), e.weighted[me], b.out, g.routings[me].numTokens);
    }
    if (gFailures == 0 && me == 0) std::printf("rank 0: %d graph replays match the oracle\n", o_.graphReplays);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }

  // A bad routing on one rank (or a K that differs): every rank's dispatch records the same
  // ncclInvalidArgument, and no output is written anywhere.
  void badRouting() {
    Group g = makeGroup(o_, env_.size, o_.seed, true);
    const int me = env_.rank;
    std::string want;
    int topk = o_.topk;
    if (o_.badRank >= 0) {
      g.routings[o_.badRank].topkIdx[1] = o_.experts + 5;
      want = "rank " + std::to_string(o_.badRank) + " token 0 slot 1: expert id " + std::to_string(o_.experts + 5);
    } else if (o_.dupRank >= 0) {
      // Token 2's slot 1 repeats its slot 0 (an expert in range).
      std::vector<int64_t>& ids = g.routings[o_.dupRank].topkIdx;
      if (ids[2 * o_.topk] < 0) ids[2 * o_.topk] = 0;
      ids[2 * o_.topk + 1] = ids[2 * o_.topk];
      want = "rank " + std::to_string(o_.dupRank) + " token 2 slot 1: expert";
    } else {
      // That rank's ids keep the first K - 1 slots of each token (still a valid routing of its own).
      if (me == o_.topkRank) {
        topk = o_.topk - 1;
        RankRouting& mine = g.routings[me];
        std::vector<int64_t> fewer;
        for (int t = 0; t < mine.numTokens; ++t)
          for (int k = 0; k < topk; ++k) fewer.push_back(mine.topkIdx[static_cast<size_t>(t) * o_.topk + k]);
        mine.topkIdx = fewer;
        mine.topk = topk;
      }
      want = "rank " + std::to_string(o_.topkRank) + " passed topk=" + std::to_string(o_.topk - 1);
    }
    Buffers b(g.shape, o_.topk);
    b.uploadInputs(g, me);
    b.poison();
    ncclMoeLowLatencyDispatchArgs_t d = b.dispatchArgs(g, me, topk);
    if (!call(ncclMoeLowLatencyDispatch(comm_, &d, stream_), "ncclMoeLowLatencyDispatch")) return;
    checkCuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    ncclResult_t async = ncclSuccess;
    ncclMoeCommGetAsyncError(comm_, &async);
    const std::string message = ncclMoeGetLastError(comm_);
    if (async != ncclInvalidArgument || message.find(want) == std::string::npos)
      fail("expected ncclInvalidArgument naming \"%s\", got %d: %s", want.c_str(), async, message.c_str());
    else
      std::printf("rank %d: bad routing reported as expected: %s\n", me, message.c_str());
    for (const DeviceBuffer* out : {&b.recvX, &b.recvCount, &b.recvSrcInfo, &b.recvScales}) {
      const std::vector<uint8_t> bytes = download(*out);
      if (!allPoison(bytes.data(), bytes.size())) fail("an output was written despite the routing fault");
    }
    ncclMoeLowLatencyCombineArgs_t c = b.combineArgs(g, me, true);
    if (ncclMoeLowLatencyCombine(comm_, &c, stream_) != ncclInvalidArgument)
      fail("a call after the routing fault must fail with it");
  }

  // A silent rank: the others' dispatch fails within the timeout, naming it and the phase.
  void deadRank() {
    const int me = env_.rank;
    if (me == o_.deadRank) {
      std::printf("rank %d: staying silent\n", me);
      std::fflush(stdout);
      usleep(static_cast<useconds_t>(o_.timeoutMs) * 3000u);
      return;
    }
    const Group g = makeGroup(o_, env_.size, o_.seed, true);
    Buffers b(g.shape, o_.topk);
    b.uploadInputs(g, me);
    b.poison();
    ncclMoeLowLatencyDispatchArgs_t d = b.dispatchArgs(g, me, o_.topk);
    const auto start = std::chrono::steady_clock::now();
    if (!call(ncclMoeLowLatencyDispatch(comm_, &d, stream_), "ncclMoeLowLatencyDispatch")) return;
    checkCuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ncclResult_t async = ncclSuccess;
    ncclMoeCommGetAsyncError(comm_, &async);
    const std::string message = ncclMoeGetLastError(comm_);
    const std::string peer = "peer " + std::to_string(o_.deadRank);
    // One domain: every rank waits for the silent one itself. Several: its rail peers' network
    // groups time out naming it; the others wait for a relay of their own domain that never
    // fans out, and name that relay (each error names a rank, a peer and the phase).
    const bool twoHop = gRanksPerDomain > 0 && gRanksPerDomain < env_.size;
    const bool namesPeer =
        message.find(twoHop ? std::string("peer ") : peer) != std::string::npos;
    if (async != ncclRemoteError || message.find("timed out") == std::string::npos || !namesPeer ||
        message.find("low-latency dispatch") == std::string::npos)
      fail("expected a timeout naming %s in the low-latency dispatch, got %d: %s", twoHop ? "a peer" : peer.c_str(),
           async, message.c_str());
    else if (seconds > o_.timeoutMs / 1000.0 + (twoHop ? 2.0 : 1.0))  // + the watchdog's grace and abort
      fail("the dispatch took %.2f s to fail; the timeout is %d ms", seconds, o_.timeoutMs);
    else
      std::printf("rank %d: timeout reported as expected after %.2f s: %s\n", me, seconds, message.c_str());
  }

  // The LL buffer bytes the communicator reports are the documented formula's.
  void checkInfo() {
    const Group g = makeGroup(o_, env_.size, o_.seed, true);
    ncclMoeCommInfo_t info = NCCL_MOE_COMM_INFO_INITIALIZER;
    if (ncclMoeCommGetInfo(comm_, &info) != ncclSuccess) fail("ncclMoeCommGetInfo: %s", ncclMoeGetLastError(comm_));
    const int64_t want = lowLatencyBufferBytes(g.shape).total;
    if (static_cast<int64_t>(info.lowLatencyBufferBytes) != want)
      fail("lowLatencyBufferBytes %zu, the formula says %lld", info.lowLatencyBufferBytes, (long long)want);
  }

 private:
  bool call(ncclResult_t result, const char* what) {
    if (result == ncclSuccess) return true;
    fail("%s: %s", what, ncclMoeGetLastError(comm_));
    return false;
  }

  const Options& o_;
  const RankLayout& env_;
  ncclMoeComm_t comm_;
  cudaStream_t stream_;
};

int main(int argc, char** argv) {
  Options o;
  try {
    if (flagsOf(&o).parse(argc, argv) != tools::ParseOutcome::kRun) return 0;
  } catch (const tools::UsageError& e) {
    std::fprintf(stderr, "nccl-moe-ll-rank-check: %s\n", e.what());
    return 2;
  }
  RankBootstrap setup;
  ncclComm_t nccl = nullptr;
  if (const int status = harness::startRank("ll-rank-check", &setup, &nccl); status != 0) return status;
  const RankLayout& env = setup.layout;
  gRank = env.rank;
  ncclMoeConfig_t config =
      groupConfig(o.experts, o.hidden, o.tokens, o.maxTopk > 0 ? o.maxTopk : o.topk, o.sms, o.timeoutMs);
  config.lowLatencyMaxTokens = o.tokens;
  config.lowLatencyFp8 = o.fp8;
  ncclMoeComm_t comm = nullptr;
  if (ncclMoeCommCreate(nccl, &config, &comm) != ncclSuccess) {
    std::fprintf(stderr, "rank %d: ncclMoeCommCreate: %s\n", env.rank, ncclMoeGetLastError(nullptr));
    return 1;
  }
  ncclMoeCommInfo_t info = NCCL_MOE_COMM_INFO_INITIALIZER;
  if (ncclMoeCommGetInfo(comm, &info) != ncclSuccess || info.domains < 1 || env.size % info.domains != 0) {
    std::fprintf(stderr, "rank %d: ncclMoeCommGetInfo: %s\n", env.rank, ncclMoeGetLastError(comm));
    return 1;
  }
  gRanksPerDomain = env.size / info.domains;
  if (env.rank == 0)
    std::printf("rank 0: %d NVLink domain%s of %d rank%s, LL buffers %zu bytes\n", info.domains,
                info.domains == 1 ? "" : "s", gRanksPerDomain, gRanksPerDomain == 1 ? "" : "s",
                info.lowLatencyBufferBytes);
  cudaStream_t stream;
  checkCuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  Run run(o, env, comm, stream);
  const bool failureScenario = o.badRank >= 0 || o.dupRank >= 0 || o.topkRank >= 0 || o.deadRank >= 0;
  if (o.deadRank >= 0) {
    run.deadRank();
  } else if (failureScenario) {
    run.badRouting();
  } else {
    run.checkInfo();
    for (int it = 0; it < o.iters && gFailures == 0; ++it) o.split ? run.split(it) : run.eager(it);
    if (o.graphReplays > 0 && gFailures == 0) run.graph();
  }
  // After a failure scenario the communicator failed: its destroy takes no collective step with a
  // silent rank, which never destroys.
  if (env.rank != o.deadRank) {
    if (ncclMoeCommDestroy(comm) != ncclSuccess && !failureScenario)
      fail("ncclMoeCommDestroy: %s", ncclMoeGetLastError(nullptr));
    if (failureScenario) ncclCommAbort(nccl);
    else ncclCommDestroy(nccl);
  }
  cudaStreamDestroy(stream);
  return harness::rankVerdict(env.rank, gFailures);
}

}  // namespace
}  // namespace nccl_moe

int main(int argc, char** argv) { return nccl_moe::harness::runRankProgram(nccl_moe::main, argc, argv, nccl_moe::rank_check::gRank); }
