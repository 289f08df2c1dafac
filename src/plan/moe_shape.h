// Host-side vocabulary of an MoE call: group shape, routing format, output layout.
#pragma once

#include <cstdint>
#include <climits>

namespace nccl_moe {

enum class RoutingFormat { kTopk, kMap };
enum class OutputLayout { kPerRank, kExpertMajor };
enum class ElementType { kBf16, kFp32, kE4m3 };

inline int elementBytes(ElementType type) {
  switch (type) {
    case ElementType::kBf16: return 2;
    case ElementType::kFp32: return 4;
    case ElementType::kE4m3: return 1;
  }
  return 0;
}

const char* toString(RoutingFormat format);
const char* toString(OutputLayout layout);
const char* toString(ElementType type);

// The EP group: R ranks, E experts (E % R == 0), rank r owns experts [r*L, (r+1)*L).
struct GroupShape {
  int ranks = 0;
  int experts = 0;
  int hidden = 0;
  int maxTokensPerRank = 0;
  int maxTopk = 0;

  int localExperts() const { return experts / ranks; }
  int ownerOf(int expert) const { return expert / localExperts(); }
};

// The group's dimensions as the kernels and the buffer layout read them (plain ints: passed to
// kernels by value). Made from the validated configuration (core/comm.cc groupDimsOf).
struct GroupDims {
  int experts = 0;
  int localExperts = 0;
  int hidden = 0;
  int maxTokens = 0;
  int metaWidth = 0;        // selections per token in the meta (K or maxTopk)
  int rowType = 0;          // ElementType of token rows
  int fp8 = 0;              // dispatch rows are e4m3 + scales
  int fp8PowerOfTwo = 0;
  int scaleBlocks = 0;
  // Tokens per source rank whose combine partials are in flight at once (docs/api.md, windowed
  // combine): maxTokens (one window, the whole call) unless the configuration asked for fewer.
  int combineWindow = 0;
};

// What the implementation can represent. Device row ids, slots and per-rank row counts are
// 32-bit; byte sizes are 64-bit. The limits keep every derived count inside those types: the rows
// one rank can receive (ranks x maxTokensPerRank x maxTopk, plus padding) fit an int32, and the
// buffer bytes (ranks x maxTokensPerRank x hiddenSize x 4) fit an int64 with room to spare.
struct ShapeLimits {
  static constexpr int kMaxHiddenSize = 1 << 20;      // a 4 MiB fp32 row
  static constexpr int kMaxTokensPerRank = 1 << 24;
  static constexpr int kMaxPadMultiple = 1 << 16;
  static constexpr int64_t kMaxRowsPerRank = INT32_MAX;  // received rows, budgets
};

struct LayoutOptions {
  OutputLayout layout = OutputLayout::kPerRank;
  int padMultiple = 0;     // expert-major: 0 or 1 means no padding
  int64_t rowBudget = -1;  // expert-major: fixed output rows; -1 sizes from the counts

  int effectivePad() const { return padMultiple > 1 ? padMultiple : 1; }
  bool budgeted() const { return rowBudget >= 0; }
};

}  // namespace nccl_moe

#include "misc/status.h"

namespace nccl_moe {
// Ranks > 0, experts a positive multiple of ranks, 0 < hidden <= kMaxHiddenSize,
// 0 <= maxTokens <= kMaxTokensPerRank, 1 <= maxTopk <= E, and the rows one rank can receive
// (ranks x maxTokens x min(maxTopk, L)) representable.
Status checkGroupShape(const GroupShape& shape);
// 0 <= padding <= kMaxPadMultiple; a budget only with the expert-major layout, in
// [0, kMaxRowsPerRank] and a multiple of the padding.
Status checkLayoutOptions(const LayoutOptions& options);
// The most rows a rank can receive with these options, padding included (int64: no overflow for
// shapes checkGroupShape accepts); with a budget, the budget.
int64_t maxRowsPerRank(const GroupShape& shape, const LayoutOptions& options);
// checkLayoutOptions, and the shape's worst case under these options is representable.
Status checkLayoutFits(const GroupShape& shape, const LayoutOptions& options);
}  // namespace nccl_moe
