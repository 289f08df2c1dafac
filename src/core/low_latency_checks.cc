#include "core/low_latency_checks.h"

namespace nccl_moe {

namespace {

// T and K of one call against the communicator's limits.
Status checkTokensAndTopk(const CommConfig& config, int rank, const char* args, int numTokens, int topk) {
  if (numTokens < 0 || numTokens > config.lowLatencyMaxTokens)
    return Status::invalidArgument(format("rank %d: %s.numTokens=%d must lie in [0, lowLatencyMaxTokens=%d]", rank,
                                          args, numTokens, config.lowLatencyMaxTokens));
  if (topk < 1 || topk > config.shape.maxTopk)
    return Status::invalidArgument(
        format("rank %d: %s.topk=%d must lie in [1, maxTopk=%d]", rank, args, topk, config.shape.maxTopk));
  return Status::ok();
}

Status required(int rank, const char* args, const char* field, const void* pointer, const char* when) {
  if (pointer != nullptr) return Status::ok();
  return Status::invalidArgument(format("rank %d: %s.%s is NULL%s", rank, args, field, when));
}

}  // namespace

Status checkLowLatencyAvailable(const CommConfig& config, const char* call) {
  if (config.lowLatencyMaxTokens == 0)
    return Status::invalidUsage(format("%s: the low-latency mode is off on this communicator (create it with "
                                       "ncclMoeConfig_t.lowLatencyMaxTokens > 0)",
                                       call));
  return Status::ok();
}

Status checkLowLatencyDispatchArgs(const CommConfig& config, int rank, const ncclMoeLowLatencyDispatchArgs_t* args) {
  constexpr const char* kArgs = "ncclMoeLowLatencyDispatchArgs_t";
  if (args == nullptr) return Status::invalidArgument(format("rank %d: low-latency dispatch args are NULL", rank));
  if (Status s = checkStructHeader(kArgs, args->size, args->magic, args->version, sizeof(*args)); !s.isOk()) return s;
  if (Status s = checkTokensAndTopk(config, rank, kArgs, args->numTokens, args->topk); !s.isOk()) return s;
  if (args->numTokens > 0) {
    if (Status s = required(rank, kArgs, "x", args->x, " but numTokens > 0"); !s.isOk()) return s;
    if (Status s = required(rank, kArgs, "topkIdx", args->topkIdx, " but numTokens > 0"); !s.isOk()) return s;
  }
  if (Status s = required(rank, kArgs, "recvX", args->recvX, ""); !s.isOk()) return s;
  if (Status s = required(rank, kArgs, "recvCount", args->recvCount, ""); !s.isOk()) return s;
  if (Status s = required(rank, kArgs, "recvSrcInfo", args->recvSrcInfo, ""); !s.isOk()) return s;
  if (config.lowLatencyFp8 != 0 && args->recvScales == nullptr)
    return Status::invalidArgument(
        format("rank %d: %s.recvScales is NULL but lowLatencyFp8=%d (FP8 dispatch)", rank, kArgs, config.lowLatencyFp8));
  if (config.lowLatencyFp8 == 0 && args->recvScales != nullptr)
    return Status::invalidArgument(
        format("rank %d: %s.recvScales is given but lowLatencyFp8=0 (BF16 dispatch has no scales)", rank, kArgs));
  return Status::ok();
}

Status checkLowLatencyCombineArgs(const CommConfig& config, int rank, const ncclMoeLowLatencyCombineArgs_t* args) {
  constexpr const char* kArgs = "ncclMoeLowLatencyCombineArgs_t";
  if (args == nullptr) return Status::invalidArgument(format("rank %d: low-latency combine args are NULL", rank));
  if (Status s = checkStructHeader(kArgs, args->size, args->magic, args->version, sizeof(*args)); !s.isOk()) return s;
  if (Status s = checkTokensAndTopk(config, rank, kArgs, args->numTokens, args->topk); !s.isOk()) return s;
  if (Status s = required(rank, kArgs, "y", args->y, ""); !s.isOk()) return s;
  if (Status s = required(rank, kArgs, "recvCount", args->recvCount, ""); !s.isOk()) return s;
  if (Status s = required(rank, kArgs, "recvSrcInfo", args->recvSrcInfo, ""); !s.isOk()) return s;
  if (args->numTokens > 0) {
    if (Status s = required(rank, kArgs, "topkIdx", args->topkIdx, " but numTokens > 0"); !s.isOk()) return s;
    if (Status s = required(rank, kArgs, "out", args->out, " but numTokens > 0"); !s.isOk()) return s;
  }
  return Status::ok();
}

}  // namespace nccl_moe
