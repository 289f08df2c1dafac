#include "tools/harness/mismatch.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace nccl_moe::harness {
namespace {

// The element's bytes as one hexadecimal number (little-endian, as the host reads it).
std::string hexOf(const uint8_t* element, int bytes) {
  uint64_t value = 0;
  std::memcpy(&value, element, std::min<size_t>(static_cast<size_t>(bytes), sizeof value));
  char text[24];
  std::snprintf(text, sizeof text, "0x%0*llx", 2 * bytes, static_cast<unsigned long long>(value));
  return text;
}

}  // namespace

Mismatch& Mismatch::operator+=(const Mismatch& other) {
  wrong += other.wrong;
  compared += other.compared;
  if (first.empty()) first = other.first;
  return *this;
}

Mismatch compareElements(const std::string& what, const uint8_t* got, int64_t gotCount, const uint8_t* want,
                         int64_t wantCount, int64_t rowElements, int elementBytes) {
  Mismatch m;
  m.compared = wantCount;
  const int64_t common = std::min(gotCount, wantCount);
  const size_t size = static_cast<size_t>(elementBytes);
  for (int64_t i = 0; i < common; ++i) {
    const uint8_t* g = got + static_cast<size_t>(i) * size;
    const uint8_t* w = want + static_cast<size_t>(i) * size;
    if (std::memcmp(g, w, size) == 0) continue;
    if (m.wrong++ == 0) {
      const int64_t row = rowElements > 0 ? i / rowElements : 0;
      const int64_t column = rowElements > 0 ? i % rowElements : i;
      m.first = what + ": row " + std::to_string(row) + " element " + std::to_string(column) + ": got " +
                hexOf(g, elementBytes) + ", want " + hexOf(w, elementBytes);
    }
  }
  const int64_t extra = std::max(gotCount, wantCount) - common;
  if (extra > 0) {
    if (m.wrong == 0)
      m.first = what + ": " + std::to_string(gotCount) + " elements, the reference has " + std::to_string(wantCount);
    m.wrong += extra;
  }
  return m;
}

Mismatch compareRows(const std::string& what, const HostRows& got, const HostRows& want) {
  if (got.type() != want.type() || got.cols() != want.cols()) {
    Mismatch m;
    m.compared = want.rows() * want.cols();
    m.wrong = std::max(m.compared, got.rows() * got.cols());
    m.first = what + ": [" + std::to_string(got.rows()) + ", " + std::to_string(got.cols()) + "] " +
              toString(got.type()) + ", the reference has [" + std::to_string(want.rows()) + ", " +
              std::to_string(want.cols()) + "] " + toString(want.type());
    return m;
  }
  return compareElements(what, got.bytes().data(), got.rows() * got.cols(), want.bytes().data(),
                         want.rows() * want.cols(), want.cols(), elementBytes(want.type()));
}

Mismatch compareDispatch(const DispatchResult& got, const RankDispatchOutput& want) {
  Mismatch m = compareRows("dispatch rows", got.x, want.x);
  const int64_t rows = std::max<int64_t>(want.x.rows(), 1);
  const auto bytesOf = [](const auto& v) { return reinterpret_cast<const uint8_t*>(v.data()); };
  const auto count = [](const auto& v) { return static_cast<int64_t>(v.size()); };
  if (!want.scales.empty())
    m += compareElements("dispatch FP8 scales", bytesOf(got.scales), count(got.scales), bytesOf(want.scales),
                         count(want.scales), count(want.scales) / rows, sizeof(float));
  if (!got.topkIdx.empty())
    m += compareElements("dispatch expert ids", bytesOf(got.topkIdx), count(got.topkIdx), bytesOf(want.topkIdx),
                         count(want.topkIdx), count(want.topkIdx) / rows, sizeof(int64_t));
  if (!got.probs.empty())
    m += compareElements("dispatch probs", bytesOf(got.probs), count(got.probs), bytesOf(want.probs),
                         count(want.probs), count(want.probs) / rows, sizeof(float));
  return m;
}

Mismatch compareCounts(int64_t gotRows, const std::vector<int64_t>& gotPerExpert, const RankRecvLayout& want) {
  const int64_t wantRows = static_cast<int64_t>(want.rows.size());
  Mismatch m = compareElements("received rows", reinterpret_cast<const uint8_t*>(&gotRows), 1,
                               reinterpret_cast<const uint8_t*>(&wantRows), 1, 1, sizeof(int64_t));
  m += compareElements("tokens per expert", reinterpret_cast<const uint8_t*>(gotPerExpert.data()),
                       static_cast<int64_t>(gotPerExpert.size()),
                       reinterpret_cast<const uint8_t*>(want.tokensPerExpert.data()),
                       static_cast<int64_t>(want.tokensPerExpert.size()), 0, sizeof(int64_t));
  return m;
}

}  // namespace nccl_moe::harness
