#include "plan/routing.h"

#include <cmath>
#include <cstring>

namespace nccl_moe {

std::string describeRoutingFault(const RoutingFaultRecord& record, int rank, const GroupShape& shape) {
  const int experts = shape.experts;
  const int token = record.token;
  const int slot = record.slot;
  switch (record.fault) {
    case RoutingFault::kNone: return "routing is valid";
    case RoutingFault::kExpertOutOfRange:
      return format("rank %d token %d slot %d: expert id %lld is out of range [0, %d) (-1 masks a slot)",
                    rank, token, slot, (long long)record.value, experts);
    case RoutingFault::kDuplicateExpert:
      return format("rank %d token %d slot %d: expert %lld is selected twice by the same token",
                    rank, token, slot, (long long)record.value);
    case RoutingFault::kProbNotFinite: {
      float prob;
      const uint32_t bits = static_cast<uint32_t>(record.value);
      std::memcpy(&prob, &bits, sizeof(prob));
      return format("rank %d token %d slot %d: probability %g is not finite", rank, token, slot,
                    static_cast<double>(prob));
    }
    case RoutingFault::kMapValueNotBool:
      return format("rank %d token %d expert %d: routing map byte %lld is not 0 or 1", rank, token,
                    slot, (long long)record.value);
    case RoutingFault::kTooManyExperts:
      return format("rank %d token %d: selects more than maxTopk=%d experts (expert %lld is one too many)",
                    rank, token, shape.maxTopk, (long long)record.value);
  }
  return "unknown routing fault";
}

namespace {

Status sizeMismatch(const char* name, size_t have, size_t want, int rank) {
  return Status::invalidArgument(format("rank %d: %s holds %zu elements, expected %zu", rank, name,
                                        have, want));
}

}  // namespace

Status checkRoutingShape(const GroupShape& shape, const RankRouting& routing, int rank) {
  if (routing.numTokens < 0)
    return Status::invalidArgument(
        format("rank %d: numTokens=%d must not be negative", rank, routing.numTokens));
  if (routing.numTokens > shape.maxTokensPerRank)
    return Status::invalidArgument(format("rank %d: numTokens=%d exceeds maxTokensPerRank=%d",
                                          rank, routing.numTokens, shape.maxTokensPerRank));
  const size_t tokens = static_cast<size_t>(routing.numTokens);
  if (routing.format == RoutingFormat::kTopk) {
    if (routing.topk < 1 || routing.topk > shape.maxTopk)
      return Status::invalidArgument(
          format("rank %d: topk=%d must lie in [1, maxTopk=%d]", rank, routing.topk, shape.maxTopk));
    const size_t want = tokens * routing.topk;
    if (routing.topkIdx.size() != want) return sizeMismatch("topkIdx", routing.topkIdx.size(), want, rank);
    if (routing.withProbs && routing.topkProbs.size() != want)
      return sizeMismatch("topkProbs", routing.topkProbs.size(), want, rank);
  } else {
    const size_t want = tokens * shape.experts;
    if (routing.routingMap.size() != want)
      return sizeMismatch("routingMap", routing.routingMap.size(), want, rank);
    if (routing.withProbs && routing.denseProbs.size() != want)
      return sizeMismatch("denseProbs", routing.denseProbs.size(), want, rank);
  }
  return Status::ok();
}

RoutingFaultRecord findRoutingFault(const GroupShape& shape, const RankRouting& routing) {
  const int width = routing.slots(shape.experts);
  std::vector<int> lastSeen(shape.experts, -1);  // token that last selected each expert
  for (int t = 0; t < routing.numTokens; ++t) {
    int selectedInToken = 0;
    for (int s = 0; s < width; ++s) {
      const size_t i = static_cast<size_t>(t) * width + s;
      if (routing.format == RoutingFormat::kTopk) {
        const int64_t e = routing.topkIdx[i];
        if (e == -1) continue;
        if (e < 0 || e >= shape.experts) return {RoutingFault::kExpertOutOfRange, t, s, e};
        if (lastSeen[e] == t) return {RoutingFault::kDuplicateExpert, t, s, e};
        lastSeen[e] = t;
        if (routing.hasProbs() && !std::isfinite(routing.topkProbs[i])) {
          uint32_t bits;
          std::memcpy(&bits, &routing.topkProbs[i], sizeof(bits));
          return {RoutingFault::kProbNotFinite, t, s, bits};
        }
      } else {
        const uint8_t selected = routing.routingMap[i];
        if (selected > 1) return {RoutingFault::kMapValueNotBool, t, s, selected};
        if (selected && ++selectedInToken > shape.maxTopk) return {RoutingFault::kTooManyExperts, t, s, s};
        if (selected && routing.hasProbs() && !std::isfinite(routing.denseProbs[i])) {
          uint32_t bits;
          std::memcpy(&bits, &routing.denseProbs[i], sizeof(bits));
          return {RoutingFault::kProbNotFinite, t, s, bits};
        }
      }
    }
  }
  return {};
}

Status checkGroupRouting(const GroupShape& shape, const std::vector<RankRouting>& routings) {
  if (Status s = checkGroupShape(shape); !s.isOk()) return s;
  if (static_cast<int>(routings.size()) != shape.ranks)
    return Status::invalidArgument(
        format("%zu routings given for a group of %d ranks", routings.size(), shape.ranks));
  for (int r = 0; r < shape.ranks; ++r) {
    const RankRouting& routing = routings[r];
    if (routing.format != routings[0].format)
      return Status::invalidArgument(format("rank %d uses the %s format, rank 0 the %s format", r,
                                            toString(routing.format), toString(routings[0].format)));
    if (routing.format == RoutingFormat::kTopk && routing.topk != routings[0].topk)
      return Status::invalidArgument(
          format("rank %d has topk=%d, rank 0 topk=%d: K must match across the group", r,
                 routing.topk, routings[0].topk));
    if (routing.hasProbs() != routings[0].hasProbs())
      return Status::invalidArgument(
          format("rank %d %s probabilities, rank 0 %s", r, routing.hasProbs() ? "gives" : "omits",
                 routings[0].hasProbs() ? "gives them" : "omits them"));
    if (Status s = checkRoutingShape(shape, routing, r); !s.isOk()) return s;
    const RoutingFaultRecord fault = findRoutingFault(shape, routing);
    if (fault.fault != RoutingFault::kNone)
      return Status::invalidArgument(describeRoutingFault(fault, r, shape));
  }
  return Status::ok();
}

}  // namespace nccl_moe
