#include "plan/moe_shape.h"

#include <algorithm>

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
  if (shape.hidden <= 0 || shape.hidden > ShapeLimits::kMaxHiddenSize)
    return Status::invalidArgument(format("hiddenSize=%d must lie in [1, %d]", shape.hidden,
                                          ShapeLimits::kMaxHiddenSize));
  if (shape.maxTokensPerRank < 0 || shape.maxTokensPerRank > ShapeLimits::kMaxTokensPerRank)
    return Status::invalidArgument(format("maxTokensPerRank=%d must lie in [0, %d]",
                                          shape.maxTokensPerRank, ShapeLimits::kMaxTokensPerRank));
  if (shape.maxTopk < 1 || shape.maxTopk > shape.experts)
    return Status::invalidArgument(format("maxTopk=%d must lie in [1, numExperts=%d]",
                                          shape.maxTopk, shape.experts));
  const int64_t rows = maxRowsPerRank(shape, LayoutOptions{OutputLayout::kExpertMajor, 0, -1});
  if (rows > ShapeLimits::kMaxRowsPerRank)
    return Status::invalidArgument(format(
        "ranks=%d x maxTokensPerRank=%d x min(maxTopk=%d, local experts=%d) = %lld rows per rank "
        "exceeds the %lld the 32-bit row ids can address: lower maxTokensPerRank or maxTopk",
        shape.ranks, shape.maxTokensPerRank, shape.maxTopk, shape.localExperts(), (long long)rows,
        (long long)ShapeLimits::kMaxRowsPerRank));
  return Status::ok();
}

int64_t maxRowsPerRank(const GroupShape& shape, const LayoutOptions& options) {
  if (options.budgeted()) return options.rowBudget;
  const int64_t tokens = static_cast<int64_t>(shape.ranks) * shape.maxTokensPerRank;
  if (options.layout == OutputLayout::kPerRank) return tokens;
  const int local = shape.localExperts();
  const int64_t pairs = tokens * std::min(shape.maxTopk, local);
  return pairs + static_cast<int64_t>(local) * (options.effectivePad() - 1);
}

Status checkLayoutFits(const GroupShape& shape, const LayoutOptions& options) {
  if (Status s = checkLayoutOptions(options); !s.isOk()) return s;
  const int64_t rows = maxRowsPerRank(shape, options);
  if (rows > ShapeLimits::kMaxRowsPerRank)
    return Status::invalidArgument(format(
        "with padMultiple=%d a rank may receive %lld rows, more than the %lld the 32-bit row ids "
        "can address", options.padMultiple, (long long)rows, (long long)ShapeLimits::kMaxRowsPerRank));
  return Status::ok();
}

Status checkLayoutOptions(const LayoutOptions& options) {
  if (options.padMultiple < 0 || options.padMultiple > ShapeLimits::kMaxPadMultiple)
    return Status::invalidArgument(format("padMultiple=%d must lie in [0, %d]", options.padMultiple,
                                          ShapeLimits::kMaxPadMultiple));
  if (options.layout == OutputLayout::kPerRank && options.padMultiple > 1)
    return Status::invalidArgument(
        format("padMultiple=%d applies only to the expert-major layout", options.padMultiple));
  if (options.rowBudget < -1 || options.rowBudget > ShapeLimits::kMaxRowsPerRank)
    return Status::invalidArgument(format(
        "rowBudget=%lld must be -1 (blocking) or a row count in [0, %lld]",
        (long long)options.rowBudget, (long long)ShapeLimits::kMaxRowsPerRank));
  if (options.budgeted() && options.layout != OutputLayout::kExpertMajor)
    return Status::invalidArgument("rowBudget applies only to the expert-major layout");
  if (options.budgeted() && options.rowBudget % options.effectivePad() != 0)
    return Status::invalidArgument(format("rowBudget=%lld is not a multiple of padMultiple=%d",
                                          (long long)options.rowBudget, options.padMultiple));
  return Status::ok();
}

}  // namespace nccl_moe
