#include "tools/demo/report.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <random>

#include "reference/random_routing.h"

namespace nccl_moe::demo {

harness::GroupInputs makeInputs(const DemoOptions& o, int ranks) {
  harness::GroupInputs in;
  in.shape = GroupShape{ranks, o.experts, o.hidden, o.tokens, o.topk};
  std::mt19937_64 rng(o.seed);
  RoutingRecipe recipe;
  recipe.numTokens = o.tokens;
  recipe.topk = o.topk;
  recipe.experts = o.experts;
  recipe.skew = o.skew;
  for (int r = 0; r < ranks; ++r) {
    in.routings.push_back(randomTopkRouting(recipe, rng));
    in.x.push_back(randomRows(ElementType::kBf16, o.tokens, o.hidden, 1.0f, rng));
  }
  return in;
}

void InputCheck::add(const InputCheck& other) {
  checked += other.checked;
  bad += other.bad;
  worst = std::max(worst, other.worst);
}

InputCheck checkAgainstInput(const DemoOptions& o, const RankRouting& routing, const HostRows& x,
                             const HostRows& combined) {
  const double roundings = o.expertMajor() ? 3.0 : 2.0;
  const double unit = roundings / 256 + (o.fp8 ? 1.0 / 16 : 0.0) + 1.0 / (1 << 20);
  const double absolute = o.fp8 ? 1e-5 : 1e-7;
  InputCheck check;
  for (int t = 0; t < routing.numTokens; ++t) {
    double probSum = 0.0;
    forEachSelection(routing, o.experts, t, [&](const Selection& sel) { probSum += sel.prob; });
    for (int c = 0; c < o.hidden; ++c) {
      const double want = x.get(t, c) * probSum;
      const double err = std::fabs(combined.get(t, c) - want);
      const double tol = unit * std::fabs(x.get(t, c)) * probSum + absolute;
      check.worst = std::max(check.worst, err / tol);
      check.bad += !(err <= tol);  // a NaN is outside too
      ++check.checked;
    }
  }
  return check;
}

std::string rankTable(const DemoOptions& o, const GroupLayout& layout) {
  const int ranks = layout.shape.ranks;
  const double rowBytes = o.fp8 ? o.hidden + fp8BlockCount(o.hidden) * 4.0 : o.hidden * 2.0;
  std::string text;
  char line[256];
  std::snprintf(line, sizeof line, "#\n# %4s %8s %10s %10s %10s %12s %12s %10s\n", "rank", "tokens", "rows_sent",
                "rows_recv", "pad_rows", "dispatch_rx", "combine_rx", "experts");
  text += line;
  std::snprintf(line, sizeof line, "# %4s %8s %10s %10s %10s %12s %12s %10s\n", "", "", "(remote)", "", "", "bytes",
                "bytes", "min/max");
  text += line;
  std::vector<int64_t> sentRemote(ranks, 0);
  for (int d = 0; d < ranks; ++d)
    for (const RecvRow& r : layout.recv[d].rows)
      if (!r.isPadding() && r.srcRank != d) ++sentRemote[r.srcRank];
  int64_t totalRecv = 0, totalPad = 0;
  for (int d = 0; d < ranks; ++d) {
    const RankRecvLayout& recv = layout.recv[d];
    int64_t pad = 0, lo = INT64_MAX, hi = 0;
    for (const RecvRow& r : recv.rows) pad += r.isPadding();
    for (int64_t c : recv.pairsPerExpert) {
      lo = std::min(lo, c);
      hi = std::max(hi, c);
    }
    const int64_t rows = static_cast<int64_t>(recv.rows.size());
    int64_t combineRows = 0;
    for (const auto& token : layout.sentTo[d]) combineRows += static_cast<int64_t>(token.size());
    totalRecv += rows;
    totalPad += pad;
    std::snprintf(line, sizeof line, "  %4d %8d %10lld %10lld %10lld %12s %12s %4lld/%-5lld\n", d,
                  layout.tokensPerRank[d], (long long)sentRemote[d], (long long)rows, (long long)pad,
                  humanBytes((rows - pad) * rowBytes).c_str(), humanBytes(combineRows * o.hidden * 2.0).c_str(),
                  (long long)lo, (long long)hi);
    text += line;
  }
  const LayoutTraffic traffic = summarizeTraffic(layout);
  std::snprintf(line, sizeof line,
                "#\n# rows received %lld (padding %lld), (token, expert) pairs %lld, rows crossing ranks %lld (%.1f%%)\n",
                (long long)totalRecv, (long long)totalPad, (long long)traffic.pairsRouted,
                (long long)traffic.rowsToOtherRanks,
                totalRecv > totalPad ? 100.0 * traffic.rowsToOtherRanks / (totalRecv - totalPad) : 0.0);
  text += line;
  return text;
}

std::string inputCheckLine(const InputCheck& check) {
  char line[256];
  std::snprintf(line, sizeof line,
                "# check combine(dispatch(x) * p) == x * sum(p): %lld values, %lld outside tolerance, worst %.3f of "
                "tolerance: %s\n",
                (long long)check.checked, (long long)check.bad, check.worst, check.bad == 0 ? "PASSED" : "FAILED");
  return line;
}

std::string gpuTable(const std::vector<StepResult>& steps) {
  std::string text;
  char line[256];
  std::snprintf(line, sizeof line, "# %-9s %10s %10s %12s %8s\n", "step", "time", "GB/s/rank", "checked", "#wrong");
  text += line;
  std::snprintf(line, sizeof line, "# %-9s %10s %10s %12s %8s\n", "", "(us)", "", "(values)", "");
  text += line;
  for (const StepResult& s : steps) {
    char bandwidth[32] = "-";
    if (s.gbPerRank) std::snprintf(bandwidth, sizeof bandwidth, "%.2f", *s.gbPerRank);
    std::snprintf(line, sizeof line, "  %-9s %10.2f %10s %12lld %8lld\n", s.name.c_str(), s.us, bandwidth,
                  (long long)s.checked, (long long)s.wrong);
    text += line;
  }
  return text;
}

}  // namespace nccl_moe::demo
