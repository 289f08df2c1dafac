// Routing -> receive layout for a whole EP group: which rows every rank receives, in the
// canonical order that the GPU kernels reproduce and the CPU reference is checked against.
//
// Canonical receive order on destination rank d:
//   per-rank layout:     one row per (source rank s, token t) that selects any expert of d,
//                        ordered by s, then t.
//   expert-major layout: for local expert l = 0..L-1, one row per (s, t) selecting expert d*L+l,
//                        ordered by s, then t; the segment is then padded with padding rows up
//                        to a multiple of padMultiple. Segments start at the exclusive prefix sum
//                        of the padded counts. With a row budget B, rows at positions >= B are
//                        dropped (overflow), and tokensPerExpert counts only the rows kept.
#pragma once

#include <cstdint>
#include <vector>

#include "misc/status.h"
#include "plan/moe_shape.h"
#include "plan/routing.h"

namespace nccl_moe {

struct RecvRow {
  int32_t srcRank = -1;      // -1: a padding row
  int32_t srcToken = -1;
  int32_t localExpert = -1;  // expert-major only

  bool isPadding() const { return srcRank < 0; }
};

struct RankRecvLayout {
  std::vector<RecvRow> rows;             // every row this rank writes, in receive order
  std::vector<int64_t> tokensPerExpert;  // [L]: what the API reports (see header comment)
  std::vector<int64_t> pairsPerExpert;   // [L]: (token, local expert) pairs, unpadded, unclipped
  std::vector<int64_t> segmentStart;     // [L]: expert-major: first row of each segment
  int64_t rowsNeeded = 0;                // rows before a budget is applied
  bool overflow = false;
};

// Where one source token's rows went: (destination rank, row) in destination-rank order, and
// inside one rank in row order. This is the order combine sums in.
struct RowRef {
  int32_t dstRank;
  int64_t row;
};

struct GroupLayout {
  GroupShape shape;
  LayoutOptions options;
  RoutingFormat format = RoutingFormat::kTopk;
  int topk = 0;
  std::vector<int> tokensPerRank;                        // T of each source rank
  std::vector<RankRecvLayout> recv;                      // per destination rank
  std::vector<std::vector<std::vector<RowRef>>> sentTo;  // [srcRank][token] -> rows

  int64_t recvRows(int rank) const { return static_cast<int64_t>(recv[rank].rows.size()); }
};

// Validates shape, options and routing (all of them, before anything is computed) and builds the
// layout. The routings' probabilities are not needed here.
Status buildGroupLayout(const GroupShape& shape, const std::vector<RankRouting>& routings,
                        const LayoutOptions& options, GroupLayout* layout);

// Traffic a layout implies, for tables and cost checks.
struct LayoutTraffic {
  int64_t rowsReceived = 0;       // all ranks
  int64_t paddingRows = 0;        // all ranks
  int64_t rowsToOtherRanks = 0;   // rows whose source rank differs from the destination
  int64_t pairsRouted = 0;        // (token, expert) selections, before any budget
};
LayoutTraffic summarizeTraffic(const GroupLayout& layout);

}  // namespace nccl_moe
