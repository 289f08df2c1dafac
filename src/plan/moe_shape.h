// Host-side vocabulary of an MoE call: group shape, routing format, output layout.
#pragma once

#include <cstdint>

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

struct LayoutOptions {
  OutputLayout layout = OutputLayout::kPerRank;
  int padMultiple = 0;     // expert-major: 0 or 1 means no padding
  int64_t rowBudget = -1;  // expert-major: fixed output rows; -1 sizes from the counts

  int effectivePad() const { return padMultiple > 1 ? padMultiple : 1; }
  bool budgeted() const { return rowBudget >= 0; }
};

}  // namespace nccl_moe

#include "core/status.h"

namespace nccl_moe {
// Ranks > 0, experts a positive multiple of ranks, hidden > 0, 0 <= maxTokens, 1 <= maxTopk <= E.
Status checkGroupShape(const GroupShape& shape);
// Padding >= 0; a budget only with the expert-major layout, >= 0 and a multiple of the padding.
Status checkLayoutOptions(const LayoutOptions& options);
}  // namespace nccl_moe
