#include "core/call_checks.h"

namespace nccl_moe {

namespace {

// Rows the caller must provide: the count ncclMoeHandleGetCounts read, else the budget.
Status requiredRows(const HandleSummary& handle, int64_t* rows) {
  if (handle.knownRecvRows >= 0) {
    *rows = handle.knownRecvRows;
    return Status::ok();
  }
  if (handle.options.budgeted()) {
    *rows = handle.options.rowBudget;
    return Status::ok();
  }
  return Status::invalidUsage(
      "blocking-mode handle: call ncclMoeHandleGetCounts first to learn the rows to allocate");
}

}  // namespace

Status checkRoutingArgs(const CommConfig& config, const ncclMoeRouting_t* routing,
                        HandleSummary* summary) {
  if (routing == nullptr) return Status::invalidArgument("routing is NULL");
  if (Status s = checkStructHeader("ncclMoeRouting_t", routing->size, routing->magic,
                                   routing->version, sizeof(ncclMoeRouting_t));
      !s.isOk())
    return s;
  const GroupShape& shape = config.shape;
  if (routing->numTokens < 0 || routing->numTokens > shape.maxTokensPerRank)
    return Status::invalidArgument(format("routing.numTokens=%d must lie in [0, maxTokensPerRank=%d]",
                                          routing->numTokens, shape.maxTokensPerRank));
  const bool anyTokens = routing->numTokens > 0;
  HandleSummary out;
  out.numTokens = routing->numTokens;
  if (routing->format == NCCL_MOE_ROUTING_TOPK) {
    out.format = RoutingFormat::kTopk;
    if (routing->topk < 1 || routing->topk > shape.maxTopk)
      return Status::invalidArgument(
          format("routing.topk=%d must lie in [1, maxTopk=%d]", routing->topk, shape.maxTopk));
    if (anyTokens && routing->topkIdx == nullptr)
      return Status::invalidArgument("routing.topkIdx is NULL (top-k format)");
    if (routing->routingMap != nullptr || routing->denseProbs != nullptr)
      return Status::invalidArgument("routing.routingMap/denseProbs given with the top-k format");
    out.topk = routing->topk;
  } else if (routing->format == NCCL_MOE_ROUTING_MAP) {
    out.format = RoutingFormat::kMap;
    if (anyTokens && routing->routingMap == nullptr)
      return Status::invalidArgument("routing.routingMap is NULL (routing-map format)");
    if (routing->topkIdx != nullptr || routing->topkProbs != nullptr)
      return Status::invalidArgument("routing.topkIdx/topkProbs given with the routing-map format");
  } else {
    return Status::invalidArgument(format("routing.format=%d is not a ncclMoeRoutingFormat_t",
                                          routing->format));
  }
  *summary = out;
  return Status::ok();
}

Status checkLayoutArgs(const CommConfig& config, const ncclMoeLayoutOptions_t* options,
                       LayoutOptions* resolved) {
  if (options == nullptr) return Status::invalidArgument("layout options are NULL");
  if (Status s = checkStructHeader("ncclMoeLayoutOptions_t", options->size, options->magic,
                                   options->version, sizeof(ncclMoeLayoutOptions_t));
      !s.isOk())
    return s;
  LayoutOptions out;
  if (options->layout == NCCL_MOE_LAYOUT_PER_RANK)
    out.layout = OutputLayout::kPerRank;
  else if (options->layout == NCCL_MOE_LAYOUT_EXPERT_MAJOR)
    out.layout = OutputLayout::kExpertMajor;
  else
    return Status::invalidArgument(
        format("options.layout=%d is not a ncclMoeLayout_t", options->layout));
  out.padMultiple = options->padMultiple;
  out.rowBudget = options->rowBudget;
  if (Status s = checkLayoutFits(config.shape, out); !s.isOk()) return s;
  *resolved = out;
  return Status::ok();
}

Status checkDispatchArgs(const CommConfig& config, const HandleSummary& handle,
                         const ncclMoeDispatchArgs_t* args) {
  if (args == nullptr) return Status::invalidArgument("dispatch args are NULL");
  if (Status s = checkStructHeader("ncclMoeDispatchArgs_t", args->size, args->magic, args->version,
                                   sizeof(ncclMoeDispatchArgs_t));
      !s.isOk())
    return s;
  if (handle.numTokens > 0 && args->x == nullptr)
    return Status::invalidArgument(format("args.x is NULL but numTokens=%d", handle.numTokens));
  int64_t rows = 0;
  if (Status s = requiredRows(handle, &rows); !s.isOk()) return s;
  if (args->recvRows < rows)
    return Status::invalidArgument(format("args.recvRows=%lld is smaller than the %lld rows received",
                                          (long long)args->recvRows, (long long)rows));
  if (rows > 0 && args->recvX == nullptr) return Status::invalidArgument("args.recvX is NULL");
  if (config.fp8Dispatch && rows > 0 && args->recvScales == nullptr)
    return Status::invalidArgument("args.recvScales is NULL but fp8Dispatch is on");
  if (!config.fp8Dispatch && args->recvScales != nullptr)
    return Status::invalidArgument("args.recvScales is given but fp8Dispatch is off");

  const bool perRank = handle.options.layout == OutputLayout::kPerRank;
  if (args->recvTopkIdx != nullptr && !(perRank && handle.format == RoutingFormat::kTopk))
    return Status::invalidArgument("args.recvTopkIdx needs the per-rank layout and top-k routing");
  if (args->recvRoutingMap != nullptr && !(perRank && handle.format == RoutingFormat::kMap))
    return Status::invalidArgument(
        "args.recvRoutingMap needs the per-rank layout and routing-map routing");
  return Status::ok();
}

Status checkCombineArgs(const CommConfig& config, const HandleSummary& handle,
                        const ncclMoeCombineArgs_t* args) {
  (void)config;
  if (args == nullptr) return Status::invalidArgument("combine args are NULL");
  if (Status s = checkStructHeader("ncclMoeCombineArgs_t", args->size, args->magic, args->version,
                                   sizeof(ncclMoeCombineArgs_t));
      !s.isOk())
    return s;
  int64_t rows = 0;
  if (Status s = requiredRows(handle, &rows); !s.isOk()) return s;
  if (args->rows < rows)
    return Status::invalidArgument(format("args.rows=%lld is smaller than the %lld rows received",
                                          (long long)args->rows, (long long)rows));
  if (rows > 0 && args->x == nullptr) return Status::invalidArgument("args.x is NULL");
  if (handle.numTokens > 0 && args->out == nullptr)
    return Status::invalidArgument(format("args.out is NULL but numTokens=%d", handle.numTokens));
  // The probs gradient is all or nothing; a pointer may be NULL only where its extent is zero (an
  // empty tensor has no storage).
  if (args->probsGrad != nullptr && args->outProbsGrad == nullptr && handle.numTokens > 0)
    return Status::invalidArgument(
        format("args.outProbsGrad is NULL but args.probsGrad is given and numTokens=%d", handle.numTokens));
  if (args->outProbsGrad != nullptr && args->probsGrad == nullptr && rows > 0)
    return Status::invalidArgument(format(
        "args.probsGrad is NULL but args.outProbsGrad is given and %lld rows were received", (long long)rows));
  return Status::ok();
}

}  // namespace nccl_moe
