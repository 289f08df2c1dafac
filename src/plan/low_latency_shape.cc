#include "plan/low_latency_shape.h"

#include "misc/numerics.h"
#include "plan/cost_model.h"

namespace nccl_moe {

int LowLatencyShape::scaleBlocks() const { return fp8BlockCount(hidden); }

int64_t LowLatencyShape::scalePlaneRows() const {
  return roundUpTo(segmentRows(), LowLatencyLimits::kScalePlaneAlign);
}

Status checkLowLatencyShape(const LowLatencyShape& shape) {
  if (shape.ranks <= 0) return Status::invalidArgument(format("ranks=%d must be positive", shape.ranks));
  if (shape.experts <= 0 || shape.experts % shape.ranks != 0)
    return Status::invalidArgument(format(
        "numExperts=%d must be a positive multiple of the %d ranks", shape.experts, shape.ranks));
  if (shape.hidden <= 0 || shape.hidden > ShapeLimits::kMaxHiddenSize)
    return Status::invalidArgument(format("hiddenSize=%d must lie in [1, %d]", shape.hidden,
                                          ShapeLimits::kMaxHiddenSize));
  if (shape.maxTopk < 1 || shape.maxTopk > shape.experts)
    return Status::invalidArgument(format("maxTopk=%d must lie in [1, numExperts=%d]",
                                          shape.maxTopk, shape.experts));
  if (shape.maxTokens < 1 || shape.maxTokens > LowLatencyLimits::kMaxTokens)
    return Status::invalidArgument(format(
        "lowLatencyMaxTokens=%d must lie in [1, %d] (0 turns the low-latency mode off; larger "
        "batches belong to the high-throughput path)",
        shape.maxTokens, LowLatencyLimits::kMaxTokens));
  if (const int64_t shared = lowLatencySendSharedBytes(shape.experts, shape.maxTokens, shape.maxTopk);
      shared > LowLatencyLimits::kMaxSendSharedBytes)
    return Status::invalidArgument(format(
        "the low-latency dispatch numbers a call's rows per expert in one block's shared memory: 8 x numExperts + "
        "2 x lowLatencyMaxTokens x maxTopk = %lld bytes, more than its %lld (numExperts=%d, lowLatencyMaxTokens=%d, "
        "maxTopk=%d)",
        static_cast<long long>(shared), static_cast<long long>(LowLatencyLimits::kMaxSendSharedBytes), shape.experts,
        shape.maxTokens, shape.maxTopk));
  if (shape.ranksPerDomain < 0 || shape.ranks % shape.domainSize() != 0)
    return Status::invalidArgument(format("%d ranks do not split into NVLink domains of %d ranks",
                                          shape.ranks, shape.ranksPerDomain));
  if (shape.powerOfTwoScales && !shape.fp8)
    return Status::invalidArgument("power-of-two scales need the FP8 low-latency dispatch");
  return Status::ok();
}

int64_t roundUpTo(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

int64_t lowLatencySlotHeaderBytes(int maxTopk) {
  return roundUpTo(4 * (2 * static_cast<int64_t>(maxTopk) + 1), LowLatencyLimits::kSlotAlign);
}

int64_t lowLatencySourceCountsBytes(int localExperts) { return 4 * static_cast<int64_t>(localExperts); }

int64_t lowLatencySendSharedBytes(int experts, int tokens, int topk) {
  return 8 * static_cast<int64_t>(experts) + roundUpTo(2 * static_cast<int64_t>(tokens) * topk, 16);
}

int64_t lowLatencyDispatchRowBytes(int hidden, bool fp8) {
  const int64_t a = LowLatencyLimits::kSlotAlign;
  if (fp8) return roundUpTo(hidden, a) + roundUpTo(4 * static_cast<int64_t>(fp8BlockCount(hidden)), a);
  return roundUpTo(2 * static_cast<int64_t>(hidden), a);
}

int64_t lowLatencyCombineRowBytes(int hidden) {
  return roundUpTo(2 * static_cast<int64_t>(hidden), LowLatencyLimits::kSlotAlign);
}

int64_t lowLatencyWeightsBytes(int maxTopk) {
  return roundUpTo(4 * static_cast<int64_t>(maxTopk), LowLatencyLimits::kSlotAlign);
}

LowLatencyBufferBytes lowLatencyBufferBytes(const LowLatencyShape& shape) {
  LowLatencyBufferBytes b;
  const int64_t R = shape.ranks, N = shape.maxTokens, K = shape.maxTopk;
  const int64_t others = shape.domains() - 1;
  const int64_t slot = lowLatencySlotHeaderBytes(shape.maxTopk) + lowLatencyDispatchRowBytes(shape.hidden, shape.fp8);
  const int64_t row = lowLatencyCombineRowBytes(shape.hidden);
  const int64_t weights = lowLatencyWeightsBytes(shape.maxTopk);
  b.signals = R * LowLatencyLimits::kSignalBytesPerRank;
  b.counts = roundUpTo(R * lowLatencySourceCountsBytes(shape.localExperts()), LowLatencyLimits::kSlotAlign);
  b.dispatchRecv = R * N * slot;
  b.combineRecv = N * K * row;
  b.netDispatchSend = others * N * slot;
  b.netDispatchRecv = others * N * slot;
  b.relayRows = others * N * K * row;
  b.netWeightsSend = others * N * weights;
  b.netWeightsRecv = others * N * weights;
  b.netCombineSend = others * N * row;
  b.netCombineRecv = others * N * row;
  b.perParity = b.signals + b.counts + b.dispatchRecv + b.combineRecv + b.netDispatchSend + b.netDispatchRecv +
                b.relayRows + b.netWeightsSend + b.netWeightsRecv + b.netCombineSend + b.netCombineRecv;
  b.total = LowLatencyLimits::kParities * b.perParity;
  return b;
}

LowLatencyOutputSizes lowLatencyOutputSizes(const LowLatencyShape& shape) {
  LowLatencyOutputSizes s;
  const int64_t L = shape.localExperts();
  s.rows = L * shape.segmentRows();
  s.xBytes = s.rows * shape.hidden * (shape.fp8 ? 1 : 2);
  s.scaleFloats = shape.fp8 ? L * shape.scaleBlocks() * shape.scalePlaneRows() : 0;
  s.srcInfoInts = s.rows * 3;
  s.counts = L;
  return s;
}

LowLatencyNetworkModel lowLatencyUniformNetworkModel(const LowLatencyShape& shape, int tokens, int topk) {
  LowLatencyNetworkModel m;
  const int M = shape.domains();
  const plan::RoutingStats perToken =
      plan::uniformRoutingStats(shape.experts, topk, shape.ranks, shape.domainSize());
  m.rowsPerExpert = tokens * perToken.remoteExpertPairs;
  m.rowsPerRank = tokens * perToken.remoteRanks;
  m.rowsPerNode = tokens * perToken.remoteDomains;
  m.dispatchPayloadRowBytes = shape.fp8 ? shape.hidden + 4 * static_cast<int64_t>(shape.scaleBlocks())
                                        : 2 * static_cast<int64_t>(shape.hidden);
  m.combinePayloadRowBytes = 2 * static_cast<int64_t>(shape.hidden);
  m.dispatchBytesPerExpert = m.rowsPerExpert * m.dispatchPayloadRowBytes;
  m.dispatchBytesPerNode = m.rowsPerNode * m.dispatchPayloadRowBytes;
  m.combineBytesPerExpert = m.rowsPerExpert * m.combinePayloadRowBytes;
  m.combineBytesPerNode = m.rowsPerNode * m.combinePayloadRowBytes;
  m.dedupFactor = m.rowsPerNode > 0 ? m.rowsPerExpert / m.rowsPerNode : 0;
  const int64_t slots = static_cast<int64_t>(M - 1) * shape.maxTokens;
  m.fixedWireDispatchBytes =
      slots * (lowLatencySlotHeaderBytes(shape.maxTopk) + lowLatencyDispatchRowBytes(shape.hidden, shape.fp8));
  m.fixedWireCombineBytes =
      slots * (lowLatencyWeightsBytes(shape.maxTopk) + lowLatencyCombineRowBytes(shape.hidden));
  return m;
}

}  // namespace nccl_moe
