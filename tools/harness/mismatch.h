// Counting the elements of a rank's GPU outputs that differ from the CPU reference, bit for bit:
// dispatch copies rows (or quantises them with FP8, deterministically) and combine sums in the
// reference's fixed order, so every element must be identical (REFERENCE.md; reference.h).
// Host code only: the device results arrive here as host copies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reference/reference.h"

namespace nccl_moe::harness {

struct Mismatch {
  int64_t wrong = 0;     // elements whose bytes differ from the reference's (missing ones count too)
  int64_t compared = 0;  // elements the reference has
  std::string first;     // where the first wrong element is, for a message; empty when none

  bool ok() const { return wrong == 0; }
  Mismatch& operator+=(const Mismatch& other);
};

// Elements of `elementBytes` bytes: got[0, gotCount) against want[0, wantCount), in rows of
// `rowElements`. Elements past the shorter array count as wrong. `what` names the array in `first`:
// "dispatch rows: row 3 element 17: got 0x3f80, want 0x3f81".
Mismatch compareElements(const std::string& what, const uint8_t* got, int64_t gotCount, const uint8_t* want,
                         int64_t wantCount, int64_t rowElements, int elementBytes);

// Rows of the same element type and width.
Mismatch compareRows(const std::string& what, const HostRows& got, const HostRows& want);

// Host copies of what a rank's ncclMoeDispatch wrote. Arrays the call was not asked for are empty.
struct DispatchResult {
  HostRows x;                    // [rows, H]: the tokens' type, or E4M3 with FP8 dispatch
  std::vector<float> scales;     // FP8: [rows, ceil(H/128)]
  std::vector<int64_t> topkIdx;  // per-rank layout, top-k routing: [rows, K] local ids
  std::vector<float> probs;      // [rows, K] per-rank; [rows] expert-major
};

// The rows and FP8 scales; the expert ids and probs too where `got` has them.
Mismatch compareDispatch(const DispatchResult& got, const RankDispatchOutput& want);

// The layout's counts against the reference's: received rows and tokensPerExpert, one element each.
Mismatch compareCounts(int64_t gotRows, const std::vector<int64_t>& gotPerExpert, const RankRecvLayout& want);

}  // namespace nccl_moe::harness
