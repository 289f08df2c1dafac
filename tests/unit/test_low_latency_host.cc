// The host side of the low-latency (LL) calls (docs/low_latency.md): the configuration fields, the
// argument checks before anything is enqueued, the order of send and receive halves, and the LL
// buffer regions the library reserves (from plan/low_latency_shape.h, the one source of the bytes).
#include <gtest/gtest.h>

#include <cstddef>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/low_latency.h"
#include "core/low_latency_checks.h"
#include "core/low_latency_jobs.h"
#include "core/low_latency_trace.h"
#include "transport/low_latency_protocol.h"

namespace nccl_moe::test {
namespace {

bool contains(const Status& status, const std::string& text) {
  return status.message().find(text) != std::string::npos;
}

ncclMoeConfig_t validConfig() {
  ncclMoeConfig_t config = NCCL_MOE_CONFIG_INITIALIZER;
  config.numExperts = 64;
  config.hiddenSize = 7168;
  config.maxTokensPerRank = 256;
  config.maxTopk = 8;
  config.timeoutMs = 1000;
  return config;
}

CommConfig resolved(int lowLatencyMaxTokens, int lowLatencyFp8 = 0) {
  ncclMoeConfig_t config = validConfig();
  config.lowLatencyMaxTokens = lowLatencyMaxTokens;
  config.lowLatencyFp8 = lowLatencyFp8;
  CommConfig out;
  const Status status = resolveConfig(&config, 8, &out);
  EXPECT_TRUE(status.isOk()) << status.message();
  return out;
}

TEST(LowLatencyConfig, OffByDefaultAndTakenWhenSet) {
  const CommConfig off = resolved(NCCL_MOE_UNDEF_INT, NCCL_MOE_UNDEF_INT);
  EXPECT_EQ(off.lowLatencyMaxTokens, 0);
  EXPECT_EQ(off.lowLatencyFp8, 0);
  for (int fp8 : {0, 1, 2}) {
    const CommConfig on = resolved(128, fp8);
    EXPECT_EQ(on.lowLatencyMaxTokens, 128);
    EXPECT_EQ(on.lowLatencyFp8, fp8);
  }
  EXPECT_EQ(resolved(1).lowLatencyMaxTokens, 1);
  EXPECT_EQ(resolved(LowLatencyLimits::kMaxTokens).lowLatencyMaxTokens, LowLatencyLimits::kMaxTokens);
}

TEST(LowLatencyConfig, OutOfRangeValuesNameTheField) {
  CommConfig out;
  for (int tokens : {-1, LowLatencyLimits::kMaxTokens + 1}) {
    ncclMoeConfig_t config = validConfig();
    config.lowLatencyMaxTokens = tokens;
    const Status status = resolveConfig(&config, 8, &out);
    EXPECT_EQ(status.code(), ncclInvalidArgument);
    EXPECT_TRUE(contains(status, "lowLatencyMaxTokens=" + std::to_string(tokens))) << status.message();
    EXPECT_TRUE(contains(status, "[0, 1024]")) << status.message();
  }
  for (int fp8 : {-1, 3}) {
    ncclMoeConfig_t config = validConfig();
    config.lowLatencyFp8 = fp8;
    const Status status = resolveConfig(&config, 8, &out);
    EXPECT_EQ(status.code(), ncclInvalidArgument);
    EXPECT_TRUE(contains(status, "lowLatencyFp8=" + std::to_string(fp8))) << status.message();
  }
}

TEST(LowLatencyConfig, FirstReleaseSizeIsAcceptedWithTheModeOff) {
  // A caller built against the header before the LL fields passes the older size; whatever lies
  // past it is not read.
  ncclMoeConfig_t config = validConfig();
  config.size = offsetof(ncclMoeConfig_t, lowLatencyMaxTokens);
  config.lowLatencyMaxTokens = 77;  // past the caller's struct: never read
  config.lowLatencyFp8 = 9;
  CommConfig out;
  const Status status = resolveConfig(&config, 8, &out);
  ASSERT_TRUE(status.isOk()) << status.message();
  EXPECT_EQ(out.lowLatencyMaxTokens, 0);
  EXPECT_EQ(out.lowLatencyFp8, 0);
  config.size = sizeof(ncclMoeConfig_t) - sizeof(int);  // neither release's size
  EXPECT_EQ(resolveConfig(&config, 8, &out).code(), ncclInvalidArgument);
  config.size = sizeof(ncclMoeConfig_t) + 8;
  EXPECT_EQ(resolveConfig(&config, 8, &out).code(), ncclInvalidArgument);
}

TEST(LowLatencyConfig, GrowingHeaderTakesExactlyTheTwoSizes) {
  const size_t oldest = 40, current = 48;
  EXPECT_TRUE(checkGrowingStructHeader("s", oldest, NCCL_MOE_MAGIC, NCCL_MOE_STRUCT_VERSION, oldest, current).isOk());
  EXPECT_TRUE(checkGrowingStructHeader("s", current, NCCL_MOE_MAGIC, NCCL_MOE_STRUCT_VERSION, oldest, current).isOk());
  EXPECT_FALSE(checkGrowingStructHeader("s", 44, NCCL_MOE_MAGIC, NCCL_MOE_STRUCT_VERSION, oldest, current).isOk());
  EXPECT_FALSE(checkGrowingStructHeader("s", current, 0, NCCL_MOE_STRUCT_VERSION, oldest, current).isOk());
}

TEST(LowLatencyAvailable, OffIsInvalidUsage) {
  const Status off = checkLowLatencyAvailable(resolved(0), "ncclMoeLowLatencyDispatch");
  EXPECT_EQ(off.code(), ncclInvalidUsage);
  EXPECT_TRUE(contains(off, "low-latency mode is off")) << off.message();
  EXPECT_TRUE(contains(off, "ncclMoeLowLatencyDispatch")) << off.message();
  EXPECT_TRUE(checkLowLatencyAvailable(resolved(64), "x").isOk());
}

// Device-looking pointers the checks never dereference.
template <class T = void>
T* fake(uintptr_t at) {
  return reinterpret_cast<T*>(at);
}

ncclMoeLowLatencyDispatchArgs_t validDispatch() {
  ncclMoeLowLatencyDispatchArgs_t a = NCCL_MOE_LOW_LATENCY_DISPATCH_ARGS_INITIALIZER;
  a.numTokens = 16;
  a.topk = 8;
  a.x = fake(0x1000);
  a.topkIdx = fake<const int64_t>(0x2000);
  a.recvX = fake(0x3000);
  a.recvCount = fake<int32_t>(0x4000);
  a.recvSrcInfo = fake<int32_t>(0x5000);
  return a;
}

ncclMoeLowLatencyCombineArgs_t validCombine() {
  ncclMoeLowLatencyCombineArgs_t a = NCCL_MOE_LOW_LATENCY_COMBINE_ARGS_INITIALIZER;
  a.numTokens = 16;
  a.topk = 8;
  a.y = fake(0x1000);
  a.recvCount = fake<const int32_t>(0x2000);
  a.recvSrcInfo = fake<const int32_t>(0x3000);
  a.topkIdx = fake<const int64_t>(0x4000);
  a.out = fake(0x5000);
  return a;
}

void expectDistinct(const std::vector<std::pair<std::string, Status>>& rejections) {
  std::set<std::string> messages;
  for (const auto& [what, status] : rejections) {
    EXPECT_EQ(status.code(), ncclInvalidArgument) << what << ": " << status.message();
    EXPECT_TRUE(contains(status, "rank 3")) << what << ": " << status.message();
    EXPECT_TRUE(messages.insert(status.message()).second) << "same message for " << what;
    std::printf("  %-28s -> %s\n", what.c_str(), status.message().c_str());
  }
}

TEST(LowLatencyArgs, DispatchRejectionsNameTheArgumentRankAndLimit) {
  const CommConfig bf16 = resolved(64), fp8 = resolved(64, 1);
  const ncclMoeLowLatencyDispatchArgs_t valid = validDispatch();
  EXPECT_TRUE(checkLowLatencyDispatchArgs(bf16, 3, &valid).isOk());
  ncclMoeLowLatencyDispatchArgs_t withScales = validDispatch();
  withScales.recvScales = fake<float>(0x6000);
  EXPECT_TRUE(checkLowLatencyDispatchArgs(fp8, 3, &withScales).isOk());
  ncclMoeLowLatencyDispatchArgs_t empty = validDispatch();
  empty.numTokens = 0;
  empty.x = nullptr;
  empty.topkIdx = nullptr;
  EXPECT_TRUE(checkLowLatencyDispatchArgs(bf16, 3, &empty).isOk()) << "T = 0 needs no inputs";

  std::vector<std::pair<std::string, Status>> rejections;
  auto broken = [&](const std::string& what, auto mutate, const CommConfig& config) {
    ncclMoeLowLatencyDispatchArgs_t a = validDispatch();
    mutate(a);
    rejections.push_back({what, checkLowLatencyDispatchArgs(config, 3, &a)});
  };
  rejections.push_back({"NULL args", checkLowLatencyDispatchArgs(bf16, 3, nullptr)});
  broken("T over N", [](auto& a) { a.numTokens = 65; }, bf16);
  broken("negative T", [](auto& a) { a.numTokens = -1; }, bf16);
  broken("K over maxTopk", [](auto& a) { a.topk = 9; }, bf16);
  broken("K zero", [](auto& a) { a.topk = 0; }, bf16);
  broken("x NULL", [](auto& a) { a.x = nullptr; }, bf16);
  broken("ids NULL", [](auto& a) { a.topkIdx = nullptr; }, bf16);
  broken("recvX NULL", [](auto& a) { a.recvX = nullptr; }, bf16);
  broken("recvCount NULL", [](auto& a) { a.recvCount = nullptr; }, bf16);
  broken("recvSrcInfo NULL", [](auto& a) { a.recvSrcInfo = nullptr; }, bf16);
  broken("scales missing with FP8", [](auto&) {}, fp8);
  broken("scales given without FP8", [](auto& a) { a.recvScales = fake<float>(0x6000); }, bf16);
  expectDistinct(rejections);
  EXPECT_TRUE(contains(rejections[1].second, "numTokens=65 must lie in [0, lowLatencyMaxTokens=64]"));
  EXPECT_TRUE(contains(rejections[3].second, "maxTopk=8"));

  ncclMoeLowLatencyDispatchArgs_t header = validDispatch();
  header.magic = 0;
  EXPECT_EQ(checkLowLatencyDispatchArgs(bf16, 3, &header).code(), ncclInvalidArgument);
  header = validDispatch();
  header.size -= 8;
  EXPECT_EQ(checkLowLatencyDispatchArgs(bf16, 3, &header).code(), ncclInvalidArgument);
}

TEST(LowLatencyArgs, CombineRejectionsNameTheArgumentRankAndLimit) {
  const CommConfig config = resolved(64);
  const ncclMoeLowLatencyCombineArgs_t valid = validCombine();
  EXPECT_TRUE(checkLowLatencyCombineArgs(config, 3, &valid).isOk());
  ncclMoeLowLatencyCombineArgs_t weighted = validCombine();
  weighted.weights = fake<const float>(0x6000);
  EXPECT_TRUE(checkLowLatencyCombineArgs(config, 3, &weighted).isOk());
  ncclMoeLowLatencyCombineArgs_t empty = validCombine();
  empty.numTokens = 0;
  empty.topkIdx = nullptr;
  empty.out = nullptr;
  EXPECT_TRUE(checkLowLatencyCombineArgs(config, 3, &empty).isOk()) << "T = 0 needs no ids and no out";

  std::vector<std::pair<std::string, Status>> rejections;
  auto broken = [&](const std::string& what, auto mutate) {
    ncclMoeLowLatencyCombineArgs_t a = validCombine();
    mutate(a);
    rejections.push_back({what, checkLowLatencyCombineArgs(config, 3, &a)});
  };
  rejections.push_back({"NULL args", checkLowLatencyCombineArgs(config, 3, nullptr)});
  broken("T over N", [](auto& a) { a.numTokens = 100; });
  broken("K over maxTopk", [](auto& a) { a.topk = 12; });
  broken("y NULL", [](auto& a) { a.y = nullptr; });
  broken("recvCount NULL", [](auto& a) { a.recvCount = nullptr; });
  broken("recvSrcInfo NULL", [](auto& a) { a.recvSrcInfo = nullptr; });
  broken("ids NULL", [](auto& a) { a.topkIdx = nullptr; });
  broken("out NULL", [](auto& a) { a.out = nullptr; });
  expectDistinct(rejections);
}

TEST(LowLatencyHalves, SendReceiveOrderAndLimits) {
  OutstandingHalves<int> halves("dispatch");
  EXPECT_TRUE(halves.checkFused().isOk());
  EXPECT_EQ(halves.checkReceive().code(), ncclInvalidUsage);
  EXPECT_TRUE(contains(halves.checkReceive(), "no low-latency dispatch send half is outstanding"));
  ASSERT_TRUE(halves.checkSend().isOk());
  halves.push(1);
  EXPECT_EQ(halves.checkFused().code(), ncclInvalidUsage) << "a plain call would receive before the send half";
  ASSERT_TRUE(halves.checkSend().isOk());
  halves.push(2);
  const Status third = halves.checkSend();
  EXPECT_EQ(third.code(), ncclInvalidUsage);
  EXPECT_TRUE(contains(third, "2 low-latency dispatch send halves are already outstanding")) << third.message();
  ASSERT_TRUE(halves.checkReceive().isOk());
  EXPECT_EQ(halves.oldest(), 1);
  halves.pop();
  ASSERT_TRUE(halves.checkSend().isOk());
  halves.push(3);  // wraps around the ring
  EXPECT_EQ(halves.oldest(), 2);
  halves.pop();
  EXPECT_EQ(halves.oldest(), 3);
  halves.pop();
  EXPECT_EQ(halves.count(), 0);
  EXPECT_TRUE(halves.checkFused().isOk());
}

TEST(LowLatencyRegions, OneSourceForTheBytesAndEveryRegionAligned) {
  // The docs' example: EP8, E = 256, top-8, H = 7168, N = 128: 58,887,168 B (BF16), 44,665,856 B (FP8).
  for (const auto& [fp8, total] : {std::pair<bool, int64_t>{false, 58887168}, {true, 44665856}}) {
    LowLatencyShape shape{8, 8, 256, 7168, 8, 128, fp8, false};
    const LowLatencyRegions r = lowLatencyRegionsOf(shape);
    EXPECT_EQ(r.total, total);
    EXPECT_EQ(r.total, lowLatencyBufferBytes(shape).total);
    EXPECT_EQ(r.total, 2 * r.perParity);
    EXPECT_EQ(r.counts - r.signals, 8 * LowLatencyLimits::kSignalBytesPerRank);
    EXPECT_EQ(r.dispatchRecv - r.counts, 8 * 32 * 4) << "R x L int32";
    EXPECT_EQ(r.combineRecv - r.dispatchRecv, 8 * 128 * r.slotBytes);
    EXPECT_EQ(r.perParity - r.combineRecv, 128 * 8 * r.combineRowBytes);
    for (int64_t offset : {r.perParity, r.counts, r.dispatchRecv, r.combineRecv, r.slotBytes, r.headerBytes, r.scaleOffset,
                           r.combineRowBytes})
      EXPECT_EQ(offset % LowLatencyLimits::kSlotAlign, 0) << offset;
    EXPECT_EQ(r.headerBytes, 80) << "t + 8 ids + 8 row numbers, int32, rounded to 16";
    EXPECT_EQ(r.scaleOffset, fp8 ? 7168 : 0);
    EXPECT_EQ(r.slotBytes, 80 + (fp8 ? 7168 + 224 : 2 * 7168));
  }
}

TEST(LowLatencyRegions, ScratchCoversEveryArray) {
  LowLatencyShape shape{4, 4, 32, 333, 6, 100, true, true};
  const LowLatencyScratch s = lowLatencyScratchOf(shape);
  EXPECT_GE(s.stashKept, 2u * 100 * 6 * 4);
  EXPECT_GE(s.stashWeights, 2u * 100 * 6 * 4);
  EXPECT_EQ(s.netTails, 0u) << "one domain: no network";
  EXPECT_EQ(s.total, s.counters + s.stashKept + s.stashWeights);
  for (size_t part : {s.counters, s.stashKept, s.stashWeights}) EXPECT_EQ(part % 256, 0u);
}

TEST(LowLatencyRegions, ScratchHoldsTheNetworkTailsWithSeveralDomains) {
  // 2 x 2 ranks: tails [3 kinds][2 parities][send, receive][2 domains] of 64 + N x maxTopk bytes.
  LowLatencyShape shape{4, 2, 32, 333, 6, 100, false, false};
  const LowLatencyScratch s = lowLatencyScratchOf(shape);
  const int64_t tail = lowLatencyNetTailBytes(shape);
  EXPECT_EQ(tail, 64 + 608) << "64 + 100 x 6 rounded to 16 (more than a dispatch tail's 64 + 2 x 8 int32)";
  EXPECT_EQ(lowLatencyDispatchTailBytes(shape), 64 + 2 * 8 * 4) << "the source's counts for the 2 ranks x 8 experts";
  EXPECT_GE(static_cast<int64_t>(s.netTails), 3 * 2 * 2 * 2 * tail);
  EXPECT_EQ(s.netTails % 256, 0u);
  EXPECT_EQ(s.total, s.counters + s.stashKept + s.stashWeights + s.netTails);
  // Every index of the order is distinct and inside.
  std::set<int64_t> seen;
  for (int kind = 0; kind < kLowLatencyNetKinds; ++kind)
    for (int parity = 0; parity < 2; ++parity)
      for (int receive = 0; receive < 2; ++receive)
        for (int n = 0; n < 2; ++n) {
          const int64_t index = lowLatencyNetTailIndex(kind, parity, receive, n, 2);
          EXPECT_TRUE(seen.insert(index).second);
          EXPECT_LE((index + 1) * tail, static_cast<int64_t>(s.netTails));
        }
}

// Regions of a parity in buffer order, each inside the parity and after the previous one.
void expectRegionsInOrder(const LowLatencyShape& shape) {
  const LowLatencyRegions r = lowLatencyRegionsOf(shape);
  const LowLatencyBufferBytes b = lowLatencyBufferBytes(shape);
  const int64_t starts[] = {r.signals, r.counts, r.dispatchRecv, r.combineRecv, r.netDispatchSend, r.netDispatchRecv,
                            r.relayRows, r.netWeightsSend, r.netWeightsRecv, r.netCombineSend, r.netCombineRecv};
  const int64_t sizes[] = {b.signals, b.counts, b.dispatchRecv, b.combineRecv, b.netDispatchSend, b.netDispatchRecv,
                           b.relayRows, b.netWeightsSend, b.netWeightsRecv, b.netCombineSend, b.netCombineRecv};
  int64_t at = 0;
  for (int i = 0; i < 11; ++i) {
    EXPECT_EQ(starts[i], at) << "region " << i;
    EXPECT_EQ(starts[i] % LowLatencyLimits::kSlotAlign, 0) << "region " << i;
    at += sizes[i];
  }
  EXPECT_EQ(at, r.perParity);
  EXPECT_EQ(r.total, 2 * r.perParity);
}

TEST(LowLatencyRegions, TwoHopRegionsFollowTheFormula) {
  for (bool fp8 : {false, true}) {
    // 2 x 2, 2 x 4, 4 x 1 (the GPU suite's groups) and EP32 in domains of 8.
    for (const auto& [ranks, perDomain] : {std::pair<int, int>{4, 2}, {8, 4}, {4, 1}, {32, 8}}) {
      LowLatencyShape shape{ranks, perDomain, 8 * ranks, 7168, 8, 128, fp8, false};
      expectRegionsInOrder(shape);
      const LowLatencyRegions r = lowLatencyRegionsOf(shape);
      const int64_t others = ranks / perDomain - 1, N = 128;
      EXPECT_EQ(r.netDispatchRecv - r.netDispatchSend, others * N * r.slotBytes);
      EXPECT_EQ(r.relayRows - r.netDispatchRecv, others * N * r.slotBytes);
      EXPECT_EQ(r.netWeightsSend - r.relayRows, others * N * 8 * r.combineRowBytes);
      EXPECT_EQ(r.weightsBytes, 32);
      EXPECT_EQ(r.netWeightsRecv - r.netWeightsSend, others * N * r.weightsBytes);
      EXPECT_EQ(r.netCombineRecv - r.netCombineSend, others * N * r.combineRowBytes);
      EXPECT_EQ(r.perParity - r.netCombineRecv, others * N * r.combineRowBytes);
    }
  }
  // One domain: the network regions are empty, the layout is the one-domain one.
  LowLatencyShape one{8, 8, 256, 7168, 8, 128, false, false};
  expectRegionsInOrder(one);
  EXPECT_EQ(lowLatencyRegionsOf(one).netCombineRecv, lowLatencyRegionsOf(one).perParity);
}

TEST(LowLatencyNetJobs, OneLegPerOtherDomainInsideItsRegions) {
  LowLatencyShape shape{8, 2, 32, 200, 4, 16, true, false};  // 4 domains of 2
  const LowLatencyRegions r = lowLatencyRegionsOf(shape);
  const LowLatencyScratch scratch = lowLatencyScratchOf(shape);
  std::vector<uint8_t> buffer(static_cast<size_t>(r.total)), tails(scratch.netTails);
  const int rank = 5;  // domain 2, place 1
  const LowLatencyNetJobs jobs = lowLatencyNetJobs(buffer.data(), tails.data(), shape, rank);
  const int64_t tailBytes = lowLatencyNetTailBytes(shape);
  struct Kind {
    int64_t send, recv, row, tail;
    int phase;
  };
  // A dispatch tail: 64 bytes, then the source's rows for each of the 2 ranks x 4 experts of the domain.
  const Kind kinds[] = {{r.netDispatchSend, r.netDispatchRecv, r.slotBytes, 64 + 2 * 4 * 4, kPhaseLowLatencyDispatchNetwork},
                        {r.netWeightsSend, r.netWeightsRecv, r.weightsBytes, tailBytes, kPhaseLowLatencyCombineWeights},
                        {r.netCombineSend, r.netCombineRecv, r.combineRowBytes, 64, kPhaseLowLatencyCombinePartials}};
  std::set<const void*> tailsSeen;
  for (int kind = 0; kind < kLowLatencyNetKinds; ++kind)
    for (int parity = 0; parity < 2; ++parity) {
      const RailJob& job = jobs[kind][parity];
      EXPECT_TRUE(job.bare);
      EXPECT_EQ(job.phase, kinds[kind].phase);
      ASSERT_EQ(job.legs.size(), 3u);
      const int peers[] = {0, 1, 3};  // the other domains, in order (rank n of the rail communicator)
      for (int slot = 0; slot < 3; ++slot) {
        const RailLeg& leg = job.legs[slot];
        EXPECT_EQ(leg.peer, peers[slot]);
        EXPECT_EQ(leg.rows, 16);
        EXPECT_EQ(leg.sendRows, 16);
        EXPECT_EQ(leg.recvRows, 16);
        EXPECT_EQ(static_cast<int64_t>(leg.rowBytes), kinds[kind].row);
        const int64_t message = slot * 16 * kinds[kind].row;
        const int64_t base = parity * r.perParity;
        EXPECT_EQ(static_cast<const uint8_t*>(leg.send) - buffer.data(), base + kinds[kind].send + message);
        EXPECT_EQ(static_cast<uint8_t*>(leg.recv) - buffer.data(), base + kinds[kind].recv + message);
        EXPECT_EQ(static_cast<int64_t>(leg.tailBytes), kinds[kind].tail);
        EXPECT_EQ(static_cast<const uint8_t*>(leg.sendTail) - tails.data(),
                  lowLatencyNetTailIndex(kind, parity, 0, peers[slot], 4) * tailBytes);
        EXPECT_EQ(static_cast<uint8_t*>(leg.recvTail) - tails.data(),
                  lowLatencyNetTailIndex(kind, parity, 1, peers[slot], 4) * tailBytes);
        EXPECT_TRUE(tailsSeen.insert(leg.sendTail).second);
        EXPECT_TRUE(tailsSeen.insert(leg.recvTail).second);
      }
    }
  // What the jobs move per call is the model's fixed wire bytes (nccl-moe-perf's and nccl-moe-topo's
  // "wire"), tails aside.
  auto bytesOf = [](const RailJob& job) {
    int64_t bytes = 0;
    for (const RailLeg& leg : job.legs) bytes += leg.sendRows * static_cast<int64_t>(leg.rowBytes);
    return bytes;
  };
  const LowLatencyNetworkModel model = lowLatencyUniformNetworkModel(shape, 16, 4);
  EXPECT_EQ(bytesOf(jobs[kLowLatencyNetDispatch][0]), model.fixedWireDispatchBytes);
  EXPECT_EQ(bytesOf(jobs[kLowLatencyNetWeights][1]) + bytesOf(jobs[kLowLatencyNetPartials][1]),
            model.fixedWireCombineBytes);
  // One domain: nothing travels.
  LowLatencyShape one{4, 4, 16, 64, 2, 8, false, false};
  const LowLatencyNetJobs none = lowLatencyNetJobs(buffer.data(), nullptr, one, 1);
  for (const auto& kind : none)
    for (const RailJob& job : kind) EXPECT_TRUE(job.legs.empty());
}

TEST(LowLatencyRegions, ShapeOfAConfiguration) {
  const LowLatencyShape shape = lowLatencyShapeOf(resolved(64, 2), 8, 8);
  EXPECT_EQ(shape.ranks, 8);
  EXPECT_EQ(shape.domains(), 1);
  EXPECT_EQ(shape.maxTokens, 64);
  EXPECT_EQ(shape.experts, 64);
  EXPECT_EQ(shape.maxTopk, 8);
  EXPECT_TRUE(shape.fp8);
  EXPECT_TRUE(shape.powerOfTwoScales);
  EXPECT_TRUE(checkLowLatencyShape(shape).isOk());
  EXPECT_FALSE(lowLatencyShapeOf(resolved(64, 1), 8, 8).powerOfTwoScales);
  const LowLatencyShape twoHop = lowLatencyShapeOf(resolved(64), 8, 4);
  EXPECT_EQ(twoHop.domains(), 2);
  EXPECT_EQ(twoHop.domainSize(), 4);
  EXPECT_TRUE(checkLowLatencyShape(twoHop).isOk());
}

// The trace line: mean offsets over the calls each step was reached in, steps never reached left
// out, a step reached in fewer calls than the call count marked, and nothing before a whole call.
TEST(LowLatencyTrace, DescribesMeanOffsetsPerStep) {
  LowLatencyTrace trace{};
  EXPECT_EQ(describeLowLatencyTrace(trace, kTraceDispatch), "");
  trace.hits[kTraceDispatch][kTraceDone] = 4;
  trace.sumNs[kTraceDispatch][kTraceDone] = 4 * 90500;
  trace.hits[kTraceDispatch][kTraceArrived] = 4;
  trace.sumNs[kTraceDispatch][kTraceArrived] = 4000 + 6000 + 8000 + 10000;
  trace.hits[kTraceDispatch][kTraceJudged] = 2;
  trace.sumNs[kTraceDispatch][kTraceJudged] = 30000;
  EXPECT_EQ(describeLowLatencyTrace(trace, kTraceDispatch),
            "dispatch, 4 calls, us from the kernel's start: all arrived 7.0 | judged 15.0 (in 2) | credits released 90.5");
  EXPECT_EQ(describeLowLatencyTrace(trace, kTraceCombine), "");
  trace.hits[kTraceCombine][kTraceDone] = 1;
  trace.sumNs[kTraceCombine][kTraceDone] = 1234;
  EXPECT_EQ(describeLowLatencyTrace(trace, kTraceCombine),
            "combine, 1 calls, us from the kernel's start: credits released 1.2");
  // Block 0's own send steps come between the credit and the grid's rows sent.
  trace.hits[kTraceCombine][kTraceBlockCopied] = 1;
  trace.sumNs[kTraceCombine][kTraceBlockCopied] = 500;
  trace.hits[kTraceCombine][kTraceBlockSent] = 1;
  trace.sumNs[kTraceCombine][kTraceBlockSent] = 700;
  trace.hits[kTraceCombine][kTraceRowsSent] = 1;
  trace.sumNs[kTraceCombine][kTraceRowsSent] = 900;
  EXPECT_EQ(describeLowLatencyTrace(trace, kTraceCombine),
            "combine, 1 calls, us from the kernel's start: block 0 copied 0.5 | block 0 sent 0.7 | rows sent 0.9 | "
            "credits released 1.2");
}

}  // namespace
}  // namespace nccl_moe::test
