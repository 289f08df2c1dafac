// CPU oracle of dispatch and combine for a whole EP group at once (all ranks' inputs in, every
// rank's outputs out). It defines the semantics the GPU path must reproduce bit for bit: the
// receive order of reference/layout.h, copies for dispatch, float32 sums in a fixed order for combine.
#pragma once

#include <cstdint>
#include <vector>

#include "reference/layout.h"
#include "reference/host_rows.h"

namespace nccl_moe {

struct Fp8Options {
  bool enabled = false;
  bool powerOfTwoScales = false;
};

struct RankDispatchOutput {
  HostRows x;                            // [recvRows, H]: the input's type, or e4m3 with FP8
  std::vector<float> scales;             // FP8: [recvRows, ceil(H/128)], zero for padding rows
  std::vector<int64_t> topkIdx;          // per-rank + top-k: [recvRows, K] local ids, -1 elsewhere
  std::vector<uint8_t> routingMap;       // per-rank + map: [recvRows, L]
  std::vector<float> probs;              // per-rank: [recvRows, K] / [recvRows, L]; expert-major:
                                         // [recvRows]; empty without probs
  std::vector<int64_t> tokensPerExpert;  // [L], as the API reports them
  bool overflow = false;
};

// Forward dispatch: rows plus probs and local expert ids. x[s] is rank s's [T_s, H] tokens.
Status referenceDispatch(const GroupLayout& layout, const std::vector<RankRouting>& routings,
                         const std::vector<HostRows>& x, const Fp8Options& fp8,
                         std::vector<RankDispatchOutput>* out);

// Cached-handle dispatch (combine's backward): rows only, no routing needed.
Status referenceDispatchRows(const GroupLayout& layout, const std::vector<HostRows>& x,
                             const Fp8Options& fp8, std::vector<HostRows>* rows,
                             std::vector<std::vector<float>>* scales);

// The canonical combine order, which lets every hop reduce before it sends: for each token,
//   rank partial   = float32 sum of the token's rows on one destination rank (row order),
//                    rounded to the row type (it travels as one row);
//   domain partial = float32 sum of its ranks' partials (rank order), rounded to the row type;
//   output         = float32 sum of the domain partials (domain order), rounded to the row type.
// A domain is `ranksPerDomain` consecutive ranks (an NVLink domain); 0 = the whole group. With one
// row per (token, rank), as in the per-rank layout, the rank partials are exact.
struct CombineOrder {
  int ranksPerDomain = 0;
};

// out[s] = [T_s, H] in the rows' type. rows[d] has at least recvRows(d) rows.
Status referenceCombine(const GroupLayout& layout, const std::vector<HostRows>& rows,
                        const CombineOrder& order, std::vector<HostRows>* out);

// Dispatch's probability gradient: gradRecvProbs[d] is shaped like rank d's dispatched probs;
// out[s] is [T_s, K] or [T_s, E] in the routing's format: each selected slot takes the gradient
// of the row that carried it (0 if that row was dropped by a budget); other slots are 0.
Status referenceProbsGrad(const GroupLayout& layout, const std::vector<RankRouting>& routings,
                          const std::vector<std::vector<float>>& gradRecvProbs,
                          std::vector<std::vector<float>>* out);

}  // namespace nccl_moe
