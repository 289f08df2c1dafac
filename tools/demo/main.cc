// nccl-moe-demo: one MoE layer of a whole EP group on the CPU reference. Dispatch, an identity
// "expert" that multiplies each row by its probability, combine, and a check that every token
// came back as x * sum(probs); then a table of counts and bytes per rank.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "plan/layout.h"
#include "reference/fp8.h"
#include "reference/random_routing.h"
#include "reference/reference.h"

namespace nccl_moe {
namespace {

struct DemoOptions {
  int ranks = 8;
  int experts = 32;
  int topk = 4;
  int tokens = 512;
  int hidden = 1024;
  double skew = 0.0;
  bool expertMajor = false;
  int pad = 0;
  bool fp8 = false;
  uint64_t seed = 1;
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: nccl-moe-demo [--ranks R] [--experts E] [--topk K] [--tokens T] [--hidden H]\n"
               "                     [--skew S] [--layout per-rank|expert-major] [--pad P] [--fp8]\n"
               "                     [--seed N]\n"
               "Runs dispatch -> identity expert (x * prob) -> combine for an EP group of R ranks on\n"
               "the CPU reference and checks combine(dispatch(x) * p) == x * sum(p) for every token.\n"
               "Defaults: 8 ranks, 32 experts, top-4, 512 tokens per rank, hidden 1024, bf16.\n");
}

bool parseInt(const char* text, long long lo, long long hi, long long* value) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < lo || v > hi) return false;
  *value = v;
  return true;
}

// Returns 0 on success, 2 on a usage error (message printed).
int parseArgs(int argc, char** argv, DemoOptions* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto intArg = [&](long long lo, long long hi, auto* field) {
      long long v = 0;
      if (i + 1 >= argc || !parseInt(argv[i + 1], lo, hi, &v)) {
        std::fprintf(stderr, "nccl-moe-demo: %s needs an integer in [%lld, %lld]\n", arg.c_str(), lo, hi);
        return false;
      }
      *field = static_cast<std::remove_pointer_t<decltype(field)>>(v);
      ++i;
      return true;
    };
    bool ok = true;
    if (arg == "--ranks") ok = intArg(1, 4096, &o->ranks);
    else if (arg == "--experts") ok = intArg(1, 1 << 16, &o->experts);
    else if (arg == "--topk") ok = intArg(1, 1024, &o->topk);
    else if (arg == "--tokens") ok = intArg(0, 1 << 20, &o->tokens);
    else if (arg == "--hidden") ok = intArg(1, 1 << 16, &o->hidden);
    else if (arg == "--pad") ok = intArg(0, 1 << 16, &o->pad);
    else if (arg == "--seed") ok = intArg(0, LLONG_MAX, &o->seed);
    else if (arg == "--fp8") o->fp8 = true;
    else if (arg == "--skew" && i + 1 < argc) o->skew = std::atof(argv[++i]);
    else if (arg == "--layout" && i + 1 < argc) {
      const std::string v = argv[++i];
      if (v != "per-rank" && v != "expert-major") {
        std::fprintf(stderr, "nccl-moe-demo: --layout is per-rank or expert-major, not %s\n", v.c_str());
        return 2;
      }
      o->expertMajor = v == "expert-major";
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "nccl-moe-demo: unknown argument %s\n", arg.c_str());
      usage(stderr);
      return 2;
    }
    if (!ok) return 2;
  }
  if (o->pad > 1 && !o->expertMajor) {
    std::fprintf(stderr, "nccl-moe-demo: --pad needs --layout expert-major\n");
    return 2;
  }
  return 0;
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

int run(const DemoOptions& o) {
  GroupShape shape{o.ranks, o.experts, o.hidden, o.tokens, o.topk};
  if (Status s = checkGroupShape(shape); !s.isOk()) {
    std::fprintf(stderr, "nccl-moe-demo: %s\n", s.message().c_str());
    return 2;
  }
  std::printf("# nccl-moe-demo: EP group of %d ranks, %d experts (%d per rank), top-%d, %d tokens per "
              "rank, hidden %d, bf16%s, %s layout%s, seed %llu (CPU reference)\n",
              o.ranks, o.experts, shape.localExperts(), o.topk, o.tokens, o.hidden,
              o.fp8 ? " with FP8 E4M3 dispatch" : "", o.expertMajor ? "expert-major" : "per-rank",
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
  options.layout = o.expertMajor ? OutputLayout::kExpertMajor : OutputLayout::kPerRank;
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
  const int width = o.expertMajor ? 1 : o.topk;
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
  const double roundings = o.expertMajor ? 3.0 : 2.0;
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
  nccl_moe::DemoOptions options;
  if (int rc = nccl_moe::parseArgs(argc, argv, &options); rc != 0) return rc;
  return nccl_moe::run(options);
}
