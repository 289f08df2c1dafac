// A CPU model of the count-first layout protocol, the design the layout kernels move to (today's
// kernels have every rank scan every rank's whole routing, ~11 launches). Here:
//   1. each source rank counts its own tokens per destination rank and per expert, and positions
//      each token among its own tokens of each destination (and each selection among its own
//      selections of each expert): one pass over its own routing;
//   2. the ranks exchange only the counts (R + E integers per rank);
//   3. every rank derives every offset from the counts alone: where source s's rows start at
//      destination d (pair slots: by source; expert-major: per local expert segment, padded);
//   4. each source writes the receive entries of its own rows into the destinations (position =
//      offset + its own position), and each destination fills its padding rows.
// The steps are written as separate functions with the inputs a kernel of that step would have,
// so that the kernels can follow them line for line. The result must be the canonical layout of
// reference/layout.h exactly: tests hold buildCountFirstLayout to buildGroupLayout.
#pragma once

#include <cstdint>
#include <vector>

#include "misc/status.h"
#include "plan/moe_shape.h"
#include "plan/routing.h"
#include "reference/layout.h"

namespace nccl_moe {

// Step 1, on source rank s: what it publishes, and what it keeps to place its own rows.
struct SourceCounts {
  std::vector<int64_t> tokensTo;       // [R] its tokens that select an expert of rank d
  std::vector<int64_t> pairsOfExpert;  // [E] its (token, expert) selections of expert e
};
struct SourcePositions {
  std::vector<int64_t> pairPosition;  // [T][R]: among its tokens to d, this token's index; -1 if none
  std::vector<int64_t> rowPosition;   // [T][width]: among its selections of that expert, this one's index; -1 if masked
  int width = 0;                      // selections per token (K, or E for a routing map)
};
void countOwnTokens(const GroupShape& shape, const RankRouting& routing, SourceCounts* counts,
                    SourcePositions* positions);

// Step 3, from every rank's published counts: where source s's rows start on destination d.
struct GroupOffsets {
  std::vector<int64_t> pairBase;      // [d][s]: per-rank layout, first pair slot of s on d
  std::vector<int64_t> rowBase;       // [d][s][l]: expert-major, first row of s in d's segment l
  std::vector<int64_t> segmentStart;  // [d][l]
  std::vector<int64_t> segmentPairs;  // [d][l]: rows of the segment before padding
  std::vector<int64_t> segmentPadded; // [d][l]
};
GroupOffsets offsetsFromCounts(const GroupShape& shape, const LayoutOptions& options,
                               const std::vector<SourceCounts>& counts);

// Steps 1-4 for the whole group: the same GroupLayout as buildGroupLayout (validated the same way).
Status buildCountFirstLayout(const GroupShape& shape, const std::vector<RankRouting>& routings,
                             const LayoutOptions& options, GroupLayout* layout);

}  // namespace nccl_moe
