#include "plan/moe_shape.h"

namespace nccl_moe {

const char* toString(RoutingFormat format) {
  return format == RoutingFormat::kTopk ? "top-k" : "routing-map";
}

const char* toString(OutputLayout layout) {
  return layout == OutputLayout::kPerRank ? "per-rank" : "expert-major";
}

const char* toString(ElementType type) {
  switch (type) {
    case ElementType::kBf16: return "bf16";
    case ElementType::kFp32: return "fp32";
    case ElementType::kE4m3: return "fp8-e4m3";
  }
  return "?";
}

}  // namespace nccl_moe

namespace nccl_moe {

Status checkGroupShape(const GroupShape& shape) {
  if (shape.ranks <= 0) return Status::invalidArgument(format("ranks=%d must be positive", shape.ranks));
  if (shape.experts <= 0)
    return Status::invalidArgument(format("numExperts=%d must be positive", shape.experts));
  if (shape.experts % shape.ranks != 0)
    return Status::invalidArgument(format(
        "numExperts=%d is not a multiple of the %d ranks of the EP group", shape.experts, shape.ranks));
  if (shape.hidden <= 0)
    return Status::invalidArgument(format("hiddenSize=%d must be positive", shape.hidden));
  if (shape.maxTokensPerRank < 0)
    return Status::invalidArgument(
        format("maxTokensPerRank=%d must not be negative", shape.maxTokensPerRank));
  if (shape.maxTopk < 1 || shape.maxTopk > shape.experts)
    return Status::invalidArgument(format("maxTopk=%d must lie in [1, numExperts=%d]",
                                          shape.maxTopk, shape.experts));
  return Status::ok();
}

Status checkLayoutOptions(const LayoutOptions& options) {
  if (options.padMultiple < 0)
    return Status::invalidArgument(
        format("padMultiple=%d must not be negative", options.padMultiple));
  if (options.layout == OutputLayout::kPerRank && options.padMultiple > 1)
    return Status::invalidArgument(
        format("padMultiple=%d applies only to the expert-major layout", options.padMultiple));
  if (options.rowBudget < -1)
    return Status::invalidArgument(format(
        "rowBudget=%lld must be -1 (blocking) or a row count", (long long)options.rowBudget));
  if (options.budgeted() && options.layout != OutputLayout::kExpertMajor)
    return Status::invalidArgument("rowBudget applies only to the expert-major layout");
  if (options.budgeted() && options.rowBudget % options.effectivePad() != 0)
    return Status::invalidArgument(format("rowBudget=%lld is not a multiple of padMultiple=%d",
                                          (long long)options.rowBudget, options.padMultiple));
  return Status::ok();
}

}  // namespace nccl_moe
