// nccl-moe-perf --low-latency -c 1: what one rank's LL dispatch and combine must write, computed
// for that rank alone. The CPU oracle (reference/low_latency.h) holds every rank's full [L, R x N, H]
// outputs (L x R x N x H x 2 bytes per rank: 939 MB at EP8, N = 256, H = 7168, E = 256), which
// eight processes on one host cannot each hold; this computes only the rows this rank receives and
// the tokens it combines, from the group's routing (small) and tokens. tests/tools checks it
// against the oracle bit for bit. Host code only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/low_latency_shape.h"
#include "plan/routing.h"
#include "reference/host_rows.h"

namespace nccl_moe::perf {

// The whole group's inputs of one LL call, the same on every rank (built from the seed).
struct LowLatencyGroup {
  LowLatencyShape shape;                       // ranksPerDomain = ranks: one NVLink domain
  int topk = 0;                                // K of the call
  std::vector<RankRouting> routings;           // top-k ids, [T_s, K] per rank
  std::vector<HostRows> x;                     // [T_s, H] bf16 per rank
  std::vector<std::vector<float>> weights;     // [T_s, K] per rank
  uint64_t expertSeed = 0;                     // the expert outputs (expertOutputRow)
};

// The expert output of (source rank, token, slot): a bf16 row that depends only on these and the
// seed, so the expert rank writes it and the source rank expects it without exchanging it.
void expertOutputRow(uint64_t seed, int sourceRank, int token, int slot, int hidden, uint16_t* row);

// What rank `rank`'s dispatch writes below the counts: per local expert, its rows' (source rank,
// token, slot) in segment order.
struct LowLatencyRankLayout {
  std::vector<int32_t> counts;                       // [L]
  std::vector<std::vector<int32_t>> srcInfo;         // [L][count x 3]
};
LowLatencyRankLayout expectedLayout(const LowLatencyGroup& group, int rank);

// Received rows of every rank (the sum of its counts), without the rows themselves.
std::vector<int64_t> receivedRowsPerRank(const LowLatencyGroup& group);

// What the device wrote on one rank, downloaded: recvX [L x P x rowBytes], recvScales (FP8) [L x B x
// P4] floats, recvCount [L], recvSrcInfo [L x P x 3].
struct LowLatencyDispatchOutput {
  std::vector<uint8_t> recvX;
  std::vector<float> recvScales;
  std::vector<int32_t> recvCount;
  std::vector<int32_t> recvSrcInfo;
};

// Elements that differ bit for bit from the contract below the expected counts (rows: H elements
// each, bf16 or E4M3 codes; FP8 scales: B per row; source info: 3 per row; counts: L); a wrong
// count also counts every element of the rows it leaves out. `first` (may be null) describes the
// first difference.
int64_t wrongDispatchElements(const LowLatencyGroup& group, const LowLatencyRankLayout& layout,
                              const LowLatencyDispatchOutput& got, std::string* first);

// The expert outputs a rank feeds its combine: [L x P, H] bf16 in its dispatch layout
// (expertOutputRow of each row's source), zeros past the counts.
HostRows expertOutputs(const LowLatencyGroup& group, const LowLatencyRankLayout& layout);

// The combine's output on rank `rank`: [T, H] bf16, weighted (the group's weights) or unweighted,
// per token the fmaf chain over its kept slots in slot order from +0, rounded once; with several
// domains (group.shape.ranksPerDomain) the node partials summed in domain order (docs/low_latency.md
// section 5.3).
HostRows expectedCombine(const LowLatencyGroup& group, int rank, bool weighted);

// Elements of [T, H] bf16 that differ bit for bit.
int64_t wrongRows(const HostRows& want, const std::vector<uint8_t>& got, std::string* first);

}  // namespace nccl_moe::perf
