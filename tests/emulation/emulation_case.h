// Shared pieces of the emulation suites: topologies, routing scenarios, bit-exact comparisons.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "../support/group_case.h"
#include "hybrid_emulator.h"
#include "reference/hybrid_plan.h"

namespace nccl_moe::test {

// `domains` NVLink domains of `ranksPerDomain` GPUs.
struct Topology {
  const char* name;
  int domains;
  int ranksPerDomain;

  int ranks() const { return domains * ranksPerDomain; }
};

inline std::vector<Topology> allTopologies() {
  return {{"2x4", 2, 4}, {"2x8", 2, 8}, {"4x8", 4, 8}, {"16x8", 16, 8}, {"2x72", 2, 72}, {"128x8", 128, 8}};
}

inline std::string describeMismatch(const char* what, int rank, size_t index) {
  return std::string(what) + " differs on rank " + std::to_string(rank) + " at element " + std::to_string(index);
}

// Index of the first differing element, or -1.
template <class T>
long long firstDifference(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) return static_cast<long long>(i);
  return -1;
}

template <class T>
void expectBitEqual(const std::vector<T>& got, const std::vector<T>& want, const char* what, int rank) {
  ASSERT_EQ(got.size(), want.size()) << what << " size on rank " << rank;
  const long long at = firstDifference(got, want);
  EXPECT_EQ(at, -1) << describeMismatch(what, rank, static_cast<size_t>(at));
}

inline void expectRowsBitEqual(const HostRows& got, const HostRows& want, const char* what, int rank) {
  EXPECT_EQ(got.type(), want.type()) << what << " type on rank " << rank;
  EXPECT_EQ(got.rows(), want.rows()) << what << " rows on rank " << rank;
  EXPECT_EQ(got.cols(), want.cols()) << what << " cols on rank " << rank;
  const long long at = firstDifference(got.bytes(), want.bytes());
  EXPECT_EQ(at, -1) << describeMismatch(what, rank, static_cast<size_t>(at))
                    << (got.rowBytes() ? " (row " + std::to_string(at / static_cast<long long>(got.rowBytes())) + ")" : "");
}

inline void expectDispatchBitEqual(const std::vector<RankDispatchOutput>& got,
                                   const std::vector<RankDispatchOutput>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t d = 0; d < got.size(); ++d) {
    const int rank = static_cast<int>(d);
    expectRowsBitEqual(got[d].x, want[d].x, "dispatched rows", rank);
    expectBitEqual(got[d].scales, want[d].scales, "FP8 scales", rank);
    expectBitEqual(got[d].topkIdx, want[d].topkIdx, "top-k ids", rank);
    expectBitEqual(got[d].routingMap, want[d].routingMap, "routing map", rank);
    expectBitEqual(got[d].probs, want[d].probs, "probs", rank);
    expectBitEqual(got[d].tokensPerExpert, want[d].tokensPerExpert, "tokens per expert", rank);
    EXPECT_EQ(got[d].overflow, want[d].overflow) << "overflow on rank " << rank;
    if (::testing::Test::HasFailure()) return;  // one rank's report is enough
  }
}

// Network rows counted straight from the layout, independent of the plan: one per (token,
// other domain) pair with at least one kept row there.
inline int64_t dedupNetworkRows(const GroupLayout& layout, int ranksPerDomain) {
  int64_t rows = 0;
  for (size_t s = 0; s < layout.sentTo.size(); ++s)
    for (const std::vector<RowRef>& refs : layout.sentTo[s]) {
      int lastDomain = -1;
      for (const RowRef& ref : refs) {
        const int domain = ref.dstRank / ranksPerDomain;
        if (domain != lastDomain && domain != static_cast<int>(s) / ranksPerDomain) ++rows;
        lastDomain = domain;
      }
    }
  return rows;
}

inline void expectTrafficEqual(const LinkTraffic& measured, const LinkTraffic& predicted, const char* phase) {
  EXPECT_EQ(measured.networkRows, predicted.networkRows) << phase;
  EXPECT_EQ(measured.networkBytes, predicted.networkBytes) << phase;
  EXPECT_EQ(measured.nvlinkRows, predicted.nvlinkRows) << phase;
  EXPECT_EQ(measured.nvlinkBytes, predicted.nvlinkBytes) << phase;
}

}  // namespace nccl_moe::test
