#include "tools/perf/ll_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "misc/numerics.h"
#include "reference/fp8.h"

namespace nccl_moe::perf {
namespace {

uint64_t mix(uint64_t value) {  // splitmix64's finaliser
  value += 0x9E3779B97F4A7C15ull;
  value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9ull;
  value = (value ^ (value >> 27)) * 0x94D049BB133111EBull;
  return value ^ (value >> 31);
}

int64_t id(const LowLatencyGroup& g, int rank, int token, int slot) {
  return g.routings[static_cast<size_t>(rank)].topkIdx[static_cast<size_t>(token) * g.topk + slot];
}

void describe(std::string* first, const std::string& text) {
  if (first != nullptr && first->empty()) *first = text;
}

}  // namespace

void expertOutputRow(uint64_t seed, int sourceRank, int token, int slot, int hidden, uint16_t* row) {
  const uint64_t key = mix(seed ^ mix((static_cast<uint64_t>(sourceRank) << 40) ^
                                      (static_cast<uint64_t>(token) << 16) ^ static_cast<uint64_t>(slot)));
  for (int c = 0; c < hidden; ++c) {
    // Uniform in [-4, 4) with 2^-20 steps: most values need bf16's rounding.
    const double unit = static_cast<double>(mix(key + static_cast<uint64_t>(c)) >> 40) / static_cast<double>(1 << 24);
    row[c] = floatToBf16(static_cast<float>(unit * 8.0 - 4.0));
  }
}

LowLatencyRankLayout expectedLayout(const LowLatencyGroup& group, int rank) {
  const int L = group.shape.localExperts();
  LowLatencyRankLayout layout;
  layout.counts.assign(static_cast<size_t>(L), 0);
  layout.srcInfo.assign(static_cast<size_t>(L), {});
  for (int s = 0; s < group.shape.ranks; ++s)
    for (int t = 0; t < group.routings[static_cast<size_t>(s)].numTokens; ++t)
      for (int k = 0; k < group.topk; ++k) {
        const int64_t expert = id(group, s, t, k);
        if (expert < 0 || group.shape.ownerOf(static_cast<int>(expert)) != rank) continue;
        const int l = static_cast<int>(expert) - rank * L;
        ++layout.counts[static_cast<size_t>(l)];
        layout.srcInfo[static_cast<size_t>(l)].insert(layout.srcInfo[static_cast<size_t>(l)].end(), {s, t, k});
      }
  return layout;
}

std::vector<int64_t> receivedRowsPerRank(const LowLatencyGroup& group) {
  std::vector<int64_t> rows(static_cast<size_t>(group.shape.ranks), 0);
  for (const RankRouting& routing : group.routings)
    for (int64_t expert : routing.topkIdx)
      if (expert >= 0) ++rows[static_cast<size_t>(group.shape.ownerOf(static_cast<int>(expert)))];
  return rows;
}

int64_t wrongDispatchElements(const LowLatencyGroup& group, const LowLatencyRankLayout& layout,
                              const LowLatencyDispatchOutput& got, std::string* first) {
  const LowLatencyShape& shape = group.shape;
  const int L = shape.localExperts(), H = shape.hidden, B = shape.scaleBlocks();
  const int64_t P = shape.segmentRows();
  const size_t rowBytes = static_cast<size_t>(H) * (shape.fp8 ? 1 : 2);
  int64_t wrong = 0;
  std::vector<float> source(static_cast<size_t>(H)), scales(static_cast<size_t>(B));
  std::vector<uint8_t> codes(static_cast<size_t>(H));
  for (int l = 0; l < L; ++l) {
    const int32_t used = layout.counts[static_cast<size_t>(l)];
    if (got.recvCount[static_cast<size_t>(l)] != used) {
      ++wrong;
      describe(first, "recvCount[" + std::to_string(l) + "] = " + std::to_string(got.recvCount[static_cast<size_t>(l)]) +
                          ", want " + std::to_string(used));
    }
    for (int32_t i = 0; i < used; ++i) {
      const int32_t* want = &layout.srcInfo[static_cast<size_t>(l)][static_cast<size_t>(i) * 3];
      const int64_t row = l * P + i;
      const int32_t* info = &got.recvSrcInfo[static_cast<size_t>(row) * 3];
      for (int j = 0; j < 3; ++j)
        if (info[j] != want[j]) {
          ++wrong;
          describe(first, "segment " + std::to_string(l) + " row " + std::to_string(i) + " source info[" +
                              std::to_string(j) + "] = " + std::to_string(info[j]) + ", want " + std::to_string(want[j]));
        }
      const HostRows& x = group.x[static_cast<size_t>(want[0])];
      const uint8_t* expected = x.row(want[1]);
      if (shape.fp8) {
        for (int c = 0; c < H; ++c) source[static_cast<size_t>(c)] = x.get(want[1], c);
        quantizeRowE4m3(source.data(), H, shape.powerOfTwoScales, codes.data(), scales.data());
        expected = codes.data();
        for (int b = 0; b < B; ++b) {
          const float value = got.recvScales[static_cast<size_t>((l * B + b) * shape.scalePlaneRows() + i)];
          if (std::memcmp(&value, &scales[static_cast<size_t>(b)], sizeof(float)) != 0) {
            ++wrong;
            describe(first, "segment " + std::to_string(l) + " row " + std::to_string(i) + " scale " +
                                std::to_string(b) + " differs");
          }
        }
      }
      const uint8_t* rowGot = got.recvX.data() + static_cast<size_t>(row) * rowBytes;
      const size_t elementBytes = shape.fp8 ? 1 : 2;
      for (int c = 0; c < H; ++c)
        if (std::memcmp(rowGot + c * elementBytes, expected + c * elementBytes, elementBytes) != 0) {
          ++wrong;
          describe(first, "segment " + std::to_string(l) + " row " + std::to_string(i) + " (rank " +
                              std::to_string(want[0]) + " token " + std::to_string(want[1]) + ") element " +
                              std::to_string(c) + " differs");
        }
    }
  }
  return wrong;
}

HostRows expertOutputs(const LowLatencyGroup& group, const LowLatencyRankLayout& layout) {
  const int64_t P = group.shape.segmentRows();
  HostRows y(ElementType::kBf16, group.shape.localExperts() * P, group.shape.hidden);
  for (int l = 0; l < group.shape.localExperts(); ++l)
    for (int32_t i = 0; i < layout.counts[static_cast<size_t>(l)]; ++i) {
      const int32_t* src = &layout.srcInfo[static_cast<size_t>(l)][static_cast<size_t>(i) * 3];
      expertOutputRow(group.expertSeed, src[0], src[1], src[2], group.shape.hidden,
                      reinterpret_cast<uint16_t*>(y.row(l * P + i)));
    }
  return y;
}

HostRows expectedCombine(const LowLatencyGroup& group, int rank, bool weighted) {
  const int H = group.shape.hidden, T = group.routings[static_cast<size_t>(rank)].numTokens;
  const int D = group.shape.domainSize(), M = group.shape.domains();
  HostRows out(ElementType::kBf16, T, H);
  std::vector<uint16_t> y(static_cast<size_t>(H));
  std::vector<float> acc(static_cast<size_t>(H)), total(static_cast<size_t>(H));
  for (int t = 0; t < T; ++t) {
    // One partial per domain holding a kept slot (its slots in slot order, from +0, rounded to
    // bf16), summed in ascending domain order (docs/low_latency.md section 5.3; with one domain the
    // single partial is the whole fmaf chain).
    std::fill(total.begin(), total.end(), 0.0f);
    bool first = true;
    for (int m = 0; m < M; ++m) {
      bool any = false;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int k = 0; k < group.topk; ++k) {
        const int64_t e = id(group, rank, t, k);
        if (e < 0 || group.shape.ownerOf(static_cast<int>(e)) / D != m) continue;
        any = true;
        const float w = weighted ? group.weights[static_cast<size_t>(rank)][static_cast<size_t>(t) * group.topk + k] : 1.0f;
        expertOutputRow(group.expertSeed, rank, t, k, H, y.data());
        for (int c = 0; c < H; ++c)
          acc[static_cast<size_t>(c)] = std::fmaf(w, bf16ToFloat(y[static_cast<size_t>(c)]), acc[static_cast<size_t>(c)]);
      }
      if (!any) continue;
      for (int c = 0; c < H; ++c) {
        const float partial = bf16ToFloat(floatToBf16(acc[static_cast<size_t>(c)]));
        total[static_cast<size_t>(c)] = first ? partial : total[static_cast<size_t>(c)] + partial;
      }
      first = false;
    }
    for (int c = 0; c < H; ++c) out.set(t, c, total[static_cast<size_t>(c)]);
  }
  return out;
}

int64_t wrongRows(const HostRows& want, const std::vector<uint8_t>& got, std::string* first) {
  int64_t wrong = 0;
  const size_t elements = want.bytes().size() / 2;
  for (size_t e = 0; e < elements; ++e)
    if (e * 2 + 2 > got.size() || std::memcmp(want.bytes().data() + e * 2, got.data() + e * 2, 2) != 0) {
      ++wrong;
      describe(first, "token " + std::to_string(e / static_cast<size_t>(want.cols())) + " element " +
                          std::to_string(e % static_cast<size_t>(want.cols())) + " differs");
    }
  return wrong;
}

}  // namespace nccl_moe::perf
