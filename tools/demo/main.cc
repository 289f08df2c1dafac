// nccl-moe-demo: one MoE layer of a whole EP group on the CPU reference. Dispatch, an identity
// "expert" that multiplies each row by its probability, combine, and a check that every token
// came back as x * sum(probs); then a table of counts and bytes per rank.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "nccl_moe.h"
#include "reference/layout.h"
#include "reference/fp8.h"
#include "reference/random_routing.h"
#include "reference/reference.h"
#include "tools/common/flags.h"
#include "tools/common/tool_main.h"

namespace nccl_moe {
namespace {

struct DemoOptions {
  int ranks = 8;
  int experts = 32;
  int topk = 4;
  int tokens = 512;
  int hidden = 1024;
  double skew = 0.0;
  std::string layout = "per-rank";
  int pad = 0;
  bool fp8 = false;
  uint64_t seed = 1;
  long long maxMemory = 16LL << 30;  // host bytes the run may take (checkHostMemory)

  bool expertMajor() const { return layout == "expert-major"; }
};

constexpr const char* kAbout =
    "Runs dispatch -> identity expert (x * prob) -> combine for an EP group of R ranks on the CPU\n"
    "reference and checks combine(dispatch(x) * p) == x * sum(p) for every token.\n"
    "Exit status: 0 the check passed, 1 it failed (or the run did), 2 a bad flag.\n";

tools::ParseOutcome parseOptions(int argc, char** argv, DemoOptions* o) {
  tools::FlagSet flags({"nccl-moe-demo", "nccl-moe-demo [flags]", kAbout, tools::versionText(NCCL_MOE_VERSION_CODE)});
  flags.integer("--ranks", "ranks of the EP group", &o->ranks, 1, 4096);
  flags.integer("--experts", "experts in all, a multiple of --ranks", &o->experts, 1, 1 << 16);
  flags.integer("--topk", "experts per token, at most --experts", &o->topk, 1, 1024);
  flags.count("--tokens", "tokens per rank", &o->tokens, 0, 1 << 20);
  flags.integer("--hidden", "elements per token row", &o->hidden, 1, 1 << 16);
  flags.number("--skew", "routing skew S: expert e drawn with weight 1/(e+1)^S, 0 uniform", &o->skew, 0, 100);
  flags.choice("--layout", "layout of the received rows", &o->layout, {"per-rank", "expert-major"});
  flags.integer("--pad", "expert-major: each expert's rows padded to a multiple of N", &o->pad, 0, 1 << 16);
  flags.toggle("--fp8", "FP8 E4M3 dispatch (bf16 otherwise)", &o->fp8);
  flags.integer("--seed", "seed of the routing and the data", &o->seed, 0, std::numeric_limits<long long>::max());
  flags.count("--max-memory", "host bytes the run may take", &o->maxMemory, 1 << 20, 1LL << 50);
  return flags.parse(argc, argv);
}

// The constraints between flags (checkGroupShape's, named by flag).
void checkOptions(const DemoOptions& o) {
  if (o.experts % o.ranks != 0)
    throw tools::UsageError("--experts " + std::to_string(o.experts) + " is not a multiple of --ranks " +
                            std::to_string(o.ranks) + " (every rank holds as many experts)");
  if (o.topk > o.experts)
    throw tools::UsageError("--topk " + std::to_string(o.topk) + " is more than --experts " +
                            std::to_string(o.experts) + " (a token picks distinct experts)");
  if (o.pad > 1 && !o.expertMajor()) throw tools::UsageError("--pad needs --layout expert-major");
}

// An upper bound of the host bytes the run holds at once: per token of every rank its row, its
// combined row, its routing and where its rows went; per received row (at most min(K, R) per
// token in the per-rank layout; K per token plus each expert's padding in the expert-major one)
// the dispatched row, the expert's output row and the row's routing and bookkeeping.
double estimateHostBytes(const DemoOptions& o) {
  const double H = o.hidden, K = o.topk;
  const double tokens = static_cast<double>(o.ranks) * o.tokens;
  const double perToken = 2 * H * 2 + K * (sizeof(int64_t) + sizeof(float)) + sizeof(std::vector<RowRef>);
  const double rows = o.expertMajor() ? tokens * K + static_cast<double>(o.experts) * std::max(o.pad - 1, 0)
                                      : tokens * std::min(o.topk, o.ranks);
  const double dispatchedRow = o.fp8 ? H + fp8BlockCount(o.hidden) * 4.0 : H * 2;
  const double rowRouting = o.expertMajor() ? sizeof(float) : K * (sizeof(int64_t) + sizeof(float));
  const double perRow = dispatchedRow + H * 2 + rowRouting + sizeof(RecvRow) + sizeof(RowRef);
  return tokens * perToken + rows * perRow;
}

std::string humanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f %s", bytes, units[u]);
  return text;
}

// Refuses a run that would not fit the stated limit, before anything is allocated: a product
// of flags each in range (8 ranks x 1M tokens x hidden 64K) can still need terabytes.
void checkHostMemory(const DemoOptions& o) {
  const double bytes = estimateHostBytes(o);
  if (bytes <= static_cast<double>(o.maxMemory)) return;
  throw tools::UsageError("--ranks " + std::to_string(o.ranks) + " x --tokens " + std::to_string(o.tokens) +
                          " x --hidden " + std::to_string(o.hidden) + " with --topk " + std::to_string(o.topk) +
                          " needs about " + humanBytes(bytes) + " of host memory, over the limit of " +
                          humanBytes(static_cast<double>(o.maxMemory)) +
                          " (lower them, or raise the limit with --max-memory)");
}

int run(const DemoOptions& o) {
  GroupShape shape{o.ranks, o.experts, o.hidden, o.tokens, o.topk};
  if (Status s = checkGroupShape(shape); !s.isOk()) {
    std::fprintf(stderr, "nccl-moe-demo: %s\n", s.message().c_str());
    return 2;
  }
  std::printf("# nccl-moe-demo: EP group of %d ranks, %d experts (%d per rank), top-%d, %d tokens per "
              "rank, hidden %d, bf16%s, %s layout%s, seed %llu (CPU reference)\n",
              o.ranks, o.experts, shape.localExperts(), o.topk, o.tokens, o.hidden,
              o.fp8 ? " with FP8 E4M3 dispatch" : "", o.expertMajor() ? "expert-major" : "per-rank",
              o.pad > 1 ? (", pad " + std::to_string(o.pad)).c_str() : "", (unsigned long long)o.seed);

  std::mt19937_64 rng(o.seed);
  RoutingRecipe recipe;
  recipe.numTokens = o.tokens;
  recipe.topk = o.topk;
  recipe.experts = o.experts;
  recipe.skew = o.skew;
  std::vector<RankRouting> routings;
  std::vector<HostRows> x;
  for (int r = 0; r < o.ranks; ++r) {
    routings.push_back(randomTopkRouting(recipe, rng));
    x.push_back(randomRows(ElementType::kBf16, o.tokens, o.hidden, 1.0f, rng));
  }
  LayoutOptions options;
  options.layout = o.expertMajor() ? OutputLayout::kExpertMajor : OutputLayout::kPerRank;
  options.padMultiple = o.pad;
  GroupLayout layout;
  std::vector<RankDispatchOutput> dispatched;
  Status status = buildGroupLayout(shape, routings, options, &layout);
  if (status.isOk()) status = referenceDispatch(layout, routings, x, {o.fp8, false}, &dispatched);
  if (!status.isOk()) {
    std::fprintf(stderr, "nccl-moe-demo: %s\n", status.message().c_str());
    return 1;
  }

  // The identity expert: y_row = x_row * (sum of the row's local probs), rounded to bf16.
  const int width = o.expertMajor() ? 1 : o.topk;
  const int blocks = fp8BlockCount(o.hidden);
  std::vector<HostRows> expertOut;
  std::vector<float> row(o.hidden);
  for (int d = 0; d < o.ranks; ++d) {
    const RankDispatchOutput& in = dispatched[d];
    HostRows out(ElementType::kBf16, in.x.rows(), o.hidden);
    for (int64_t r = 0; r < in.x.rows(); ++r) {
      float p = 0.0f;
      for (int k = 0; k < width; ++k) p += in.probs[r * width + k];
      if (o.fp8)
        dequantizeRowE4m3(in.x.row(r), in.scales.data() + r * blocks, o.hidden, row.data());
      else
        for (int c = 0; c < o.hidden; ++c) row[c] = in.x.get(r, c);
      for (int c = 0; c < o.hidden; ++c) out.set(r, c, row[c] * p);
    }
    expertOut.push_back(std::move(out));
  }
  std::vector<HostRows> combined;
  if (Status s = referenceCombine(layout, expertOut, {}, &combined); !s.isOk()) {
    std::fprintf(stderr, "nccl-moe-demo: %s\n", s.message().c_str());
    return 1;
  }

  // Check: with probs >= 0, |y - x * sum(p)| <= n * u * |x| * sum(p) for bf16's unit roundoff
  // u = 2^-8 and n roundings on the way (each expert row, the output, and in the expert-major
  // layout each rank's partial), plus FP8's relative 2^-4 (and its subnormal step, absolute)
  // when on, plus float32 summation slack.
  const double roundings = o.expertMajor() ? 3.0 : 2.0;
  const double unit = roundings / 256 + (o.fp8 ? 1.0 / 16 : 0.0) + 1.0 / (1 << 20);
  const double absolute = o.fp8 ? 1e-5 : 1e-7;
  double worst = 0.0;
  int64_t bad = 0, checked = 0;
  for (int s = 0; s < o.ranks; ++s)
    for (int t = 0; t < o.tokens; ++t) {
      double probSum = 0.0;
      forEachSelection(routings[s], o.experts, t, [&](const Selection& sel) { probSum += sel.prob; });
      for (int c = 0; c < o.hidden; ++c) {
        const double want = x[s].get(t, c) * probSum;
        const double err = std::fabs(combined[s].get(t, c) - want);
        const double tol = unit * std::fabs(x[s].get(t, c)) * probSum + absolute;
        worst = std::max(worst, err / tol);
        bad += err > tol;
        ++checked;
      }
    }

  // Table of counts and bytes per rank.
  const double rowBytes = o.fp8 ? o.hidden + blocks * 4.0 : o.hidden * 2.0;
  std::printf("#\n# %4s %8s %10s %10s %10s %12s %12s %10s\n", "rank", "tokens", "rows_sent", "rows_recv",
              "pad_rows", "dispatch_rx", "combine_rx", "experts");
  std::printf("# %4s %8s %10s %10s %10s %12s %12s %10s\n", "", "", "(remote)", "", "", "bytes", "bytes",
              "min/max");
  std::vector<int64_t> sentRemote(o.ranks, 0);
  for (int d = 0; d < o.ranks; ++d)
    for (const RecvRow& r : layout.recv[d].rows)
      if (!r.isPadding() && r.srcRank != d) ++sentRemote[r.srcRank];
  int64_t totalRecv = 0, totalPad = 0;
  for (int d = 0; d < o.ranks; ++d) {
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
    std::printf("  %4d %8d %10lld %10lld %10lld %12s %12s %4lld/%-5lld\n", d, o.tokens,
                (long long)sentRemote[d], (long long)rows, (long long)pad,
                humanBytes((rows - pad) * rowBytes).c_str(),
                humanBytes(combineRows * o.hidden * 2.0).c_str(), (long long)lo, (long long)hi);
  }
  const LayoutTraffic traffic = summarizeTraffic(layout);
  std::printf("#\n# rows received %lld (padding %lld), (token, expert) pairs %lld, rows crossing ranks %lld (%.1f%%)\n",
              (long long)totalRecv, (long long)totalPad, (long long)traffic.pairsRouted,
              (long long)traffic.rowsToOtherRanks,
              totalRecv > totalPad ? 100.0 * traffic.rowsToOtherRanks / (totalRecv - totalPad) : 0.0);
  std::printf("# check combine(dispatch(x) * p) == x * sum(p): %lld values, %lld outside tolerance, worst %.3f of tolerance: %s\n",
              (long long)checked, (long long)bad, worst, bad == 0 ? "PASSED" : "FAILED");
  return bad == 0 ? 0 : 1;
}

}  // namespace
}  // namespace nccl_moe

int main(int argc, char** argv) {
  using namespace nccl_moe;
  return tools::runToolMain(
      "nccl-moe-demo",
      [&] {
        DemoOptions options;
        if (parseOptions(argc, argv, &options) == tools::ParseOutcome::kAnswered) return 0;
        checkOptions(options);
        checkHostMemory(options);
        return run(options);
      },
      "lower --ranks, --tokens, --topk or --hidden");
}
