// CPU oracle of the low-latency (LL) mode for a whole EP group (all ranks' inputs in, every
// rank's outputs out), exactly as docs/low_latency.md defines it:
//   dispatch  each (source rank s, token t, slot k) with expert e = ids[s][t,k] >= 0 becomes one
//             row of local expert l = e - d*L on rank d = e / L, in segment l of [L, P, H]
//             (P = R x N), at the position of (s, t) among the segment's rows sorted by (s, t);
//             BF16 rows are copies, FP8 rows are quantizeRowE4m3 of the source row.
//   combine   out[s][t] = bf16 of the fp32 fmaf chain over the token's valid slots in slot order
//             (one domain), or of the sum of the rounded node partials in node order (M domains).
// Two-hop: which rows cross the network (one per (token, destination domain)) and what the relay
// fans out; the bytes of the LL buffers are in plan/low_latency_shape.h.
#pragma once

#include <cstdint>
#include <vector>

#include "misc/status.h"
#include "plan/low_latency_shape.h"
#include "plan/routing.h"
#include "reference/host_rows.h"

namespace nccl_moe {

// What dispatch tells combine about one rank's received rows.
struct LowLatencyLayout {
  std::vector<int32_t> counts;   // [L]: rows received per local expert
  std::vector<int32_t> srcInfo;  // [L, P, 3]: (source rank, source token, top-k slot) per row;
                                 // past counts[l] the oracle holds -1 (the device writes nothing)
};

struct LowLatencyRankOutput {
  HostRows x;                 // [L x P, H]: row i of segment l is row l x P + i; BF16, or E4M3
  std::vector<float> scales;  // FP8 only: [L, B, scalePlaneRows] (see lowLatencyScaleIndex)
  LowLatencyLayout layout;
};

// Offset of the scale of (segment l, row i, block b): (l x B + b) x scalePlaneRows + i, i.e. the
// logical [L, P, B] tensor with the row index contiguous (what an FP8 grouped GEMM reads).
int64_t lowLatencyScaleIndex(const LowLatencyShape& shape, int l, int64_t i, int b);

// A routing fault found in the contents of a rank's top-k ids (what the device reports on every
// rank): the first in (rank, token, slot) order. rank = -1: none.
struct LowLatencyFault {
  int rank = -1;
  RoutingFaultRecord record;
};

// The checks of lowLatencyDispatch on the routings alone (shape, sizes, ids): what must hold before
// anything moves.
Status checkLowLatencyRoutings(const LowLatencyShape& shape, const std::vector<RankRouting>& routings);

// The routings must be top-k (probabilities are not read), one per rank, all with the same
// 1 <= K <= maxTopk, 0 <= T <= N; x[s] is [T_s, H] bf16. On any error nothing in *out changes;
// a content fault (expert id out of range, an id twice in one token) also fills *fault.
Status lowLatencyDispatch(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                          const std::vector<HostRows>& x, std::vector<LowLatencyRankOutput>* out,
                          LowLatencyFault* fault = nullptr);

// Combine. y[d] is rank d's expert outputs, [L x P, H] bf16 in the layout of layouts[d] (only the
// rows below the counts are read); layouts must be the dispatch's for these routings (checked).
// weights: per rank [T_s, K] fp32, or nullptr for the unweighted sum (identical to all weights 1).
// The summation order follows shape.ranksPerDomain (docs/low_latency.md, "Combine order").
Status lowLatencyCombine(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                         const std::vector<LowLatencyLayout>& layouts, const std::vector<HostRows>& y,
                         const std::vector<std::vector<float>>* weights, std::vector<HostRows>* out);

// Combine's backward with respect to its rows: gradOut[s] is [T_s, H] bf16; every row of the
// layout gets bf16(fp32(w_k x g[s][t])) (weighted), or a copy of g[s][t] (nullptr weights: the
// same as a BF16 lowLatencyDispatch of gradOut). Needs a BF16 communicator (shape.fp8 false).
// Dispatch's backward is lowLatencyCombine(..., nullptr, ...) of the row gradients.
Status lowLatencyCombineBackward(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                                 const std::vector<HostRows>& gradOut,
                                 const std::vector<std::vector<float>>* weights,
                                 std::vector<HostRows>* gradRows);

// ---- Two-hop with node deduplication -----------------------------------------------------------

// One token crossing the network once to the source's rail peer in a destination domain.
struct LowLatencyNetworkRow {
  int32_t srcToken = -1;             // also its slot index in the relay's receive region
  std::vector<int32_t> dstRanks;     // the ranks of the domain the relay copies it to, ascending
  std::vector<int32_t> slots;        // the token's top-k slots with experts there, ascending: the
                                     // order the relay sums their weighted rows in (combine)
};

struct LowLatencyTwoHop {
  int domains = 0;
  int ranksPerDomain = 0;
  // [source rank][destination domain]: the rows crossing to railPeer(source, domain), ascending
  // token; empty for the source's own domain.
  std::vector<std::vector<std::vector<LowLatencyNetworkRow>>> network;
  int64_t networkRows = 0;                   // all ranks: dispatch rows = combine partials
  std::vector<int64_t> networkRowsSent;      // [rank] as a source
  std::vector<int64_t> networkRowsRelayed;   // [rank] as a rail peer

  int railPeer(int rank, int domain) const { return domain * ranksPerDomain + rank % ranksPerDomain; }
};

// Validates like lowLatencyDispatch (no rows needed).
Status lowLatencyTwoHop(const LowLatencyShape& shape, const std::vector<RankRouting>& routings,
                        LowLatencyTwoHop* plan);

}  // namespace nccl_moe
