#include "tools/demo/options.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <vector>

#include "misc/numerics.h"
#include "reference/layout.h"
#include "tools/common/loaded_nccl.h"

namespace nccl_moe::demo {

std::string aboutText() {
  return "Runs one MoE layer: dispatch -> an identity expert (each received row times the sum of its probs)\n"
         "-> combine, and checks combine(dispatch(x) * p) == x * sum(p) for every token.\n"
         "On a GPU it runs the library (ncclMoeLayoutCreate, ncclMoeDispatch, ncclMoeCombine) over the ranks\n"
         "a launcher started: alone, a group of one rank; under nccl-moe-run -np R (one GPU shared, or one\n"
         "per GPU), mpirun, srun or torchrun, R ranks (docs/launching.md). Every rank compares its outputs\n"
         "with the CPU reference bit for bit, then the calls are timed. Without a GPU (cudaGetDeviceCount\n"
         "fails or finds none), or with --cpu, the CPU reference alone runs for --ranks ranks, and says so.\n"
         "\n"
         "Per-rank table (from the layout; rank 0 prints it):\n"
         "  rank         the rank\n"
         "  tokens       its tokens (T)\n"
         "  rows_sent    rows of its tokens that other ranks receive (remote)\n"
         "  rows_recv    rows it receives, padding included\n"
         "  pad_rows     of them, padding rows (expert-major with --pad)\n"
         "  dispatch_rx  bytes of the rows it receives, padding excluded (FP8: codes and scales)\n"
         "  combine_rx   bytes combine brings back to it: one bf16 row per row its tokens sent\n"
         "  experts      (token, expert) pairs of its least / most loaded local expert\n"
         "GPU table (rank 0 prints it):\n"
         "  step         layout (ncclMoeLayoutCreate + ncclMoeHandleGetCounts), dispatch, combine\n"
         "  time         us per call: the slowest rank's mean of --iters calls\n"
         "  GB/s/rank    bytes a rank receives (dispatch) or sends back (combine), mean over ranks, / time\n"
         "  checked      values compared with the CPU reference, all ranks (layout: row counts and tokens per\n"
         "               expert; dispatch: rows, FP8 scales, expert ids, probs; combine: outputs)\n"
         "  #wrong       of them, values differing bit for bit from the reference\n"
         "\n"
         "Exit status: 0 the checks passed, 1 they failed (or the run did), 2 a bad flag or environment.\n";
}

tools::ParseOutcome parseOptions(int argc, const char* const* argv, DemoOptions* o, std::ostream& out) {
  tools::FlagSet flags({"nccl-moe-demo", "nccl-moe-demo [flags]   (on GPUs: nccl-moe-run -np R nccl-moe-demo [flags])",
                        aboutText(), tools::versionWithLoadedNccl()});
  flags.integer("--ranks", "ranks of the EP group on the CPU reference (on GPUs: the launched ranks)", &o->ranks, 1,
                4096);
  flags.integer("--experts", "experts in all, a multiple of the ranks", &o->experts, 1, 1 << 16);
  flags.integer("--topk", "experts per token, at most --experts", &o->topk, 1, 1024);
  flags.count("--tokens", "tokens per rank", &o->tokens, 0, 1 << 20);
  flags.integer("--hidden", "elements per token row", &o->hidden, 1, 1 << 16);
  flags.number("--skew", "routing skew S: expert e drawn with weight 1/(e+1)^S, 0 uniform", &o->skew, 0, 100);
  flags.choice("--layout", "layout of the received rows", &o->layout, {"per-rank", "expert-major"});
  flags.integer("--pad", "expert-major: each expert's rows padded to a multiple of N", &o->pad, 0, 1 << 16);
  flags.toggle("--fp8", "FP8 E4M3 dispatch (bf16 otherwise)", &o->fp8);
  flags.integer("--seed", "seed of the routing and the data", &o->seed, 0, std::numeric_limits<long long>::max());
  flags.count("--max-memory", "host bytes the run may take", &o->maxMemory, 1 << 20, 1LL << 50);
  flags.toggle("--cpu", "the CPU reference alone, even where a GPU is present", &o->cpu);
  flags.integer("--iters", "on GPUs: timed calls of each step", &o->iters, 1, 1000000);
  const tools::ParseOutcome outcome = flags.parse(argc, argv, out);
  o->ranksGiven = flags.given("--ranks");
  return outcome;
}

void checkOptions(const DemoOptions& o, int ranks, bool launched) {
  if (launched && o.ranksGiven && o.ranks != ranks)
    throw tools::UsageError("--ranks " + std::to_string(o.ranks) + ", but " + std::to_string(ranks) +
                            (ranks == 1 ? " rank runs" : " ranks run") +
                            ": on GPUs the EP group is the processes a launcher starts (nccl-moe-run -np " +
                            std::to_string(o.ranks) + " nccl-moe-demo ...), or add --cpu for the CPU reference alone");
  const std::string groupText = launched ? "the " + std::to_string(ranks) + " launched rank" + (ranks == 1 ? "" : "s")
                                         : "--ranks " + std::to_string(ranks);
  if (o.experts % ranks != 0)
    throw tools::UsageError("--experts " + std::to_string(o.experts) + " is not a multiple of " + groupText +
                            " (every rank holds as many experts)");
  if (o.topk > o.experts)
    throw tools::UsageError("--topk " + std::to_string(o.topk) + " is more than --experts " +
                            std::to_string(o.experts) + " (a token picks distinct experts)");
  if (o.pad > 1 && !o.expertMajor()) throw tools::UsageError("--pad needs --layout expert-major");
}

// Per token of every rank its row, its combined row, its routing and where its rows went; per
// received row (at most min(K, R) per token in the per-rank layout; K per token plus each
// expert's padding in the expert-major one) the dispatched row, the expert's output row and the
// row's routing and bookkeeping.
double estimateHostBytes(const DemoOptions& o, int ranks) {
  const double H = o.hidden, K = o.topk;
  const double tokens = static_cast<double>(ranks) * o.tokens;
  const double perToken = 2 * H * 2 + K * (sizeof(int64_t) + sizeof(float)) + sizeof(std::vector<RowRef>);
  const double rows = o.expertMajor() ? tokens * K + static_cast<double>(o.experts) * std::max(o.pad - 1, 0)
                                      : tokens * std::min(o.topk, ranks);
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

// A product of flags each in range (8 ranks x 1M tokens x hidden 64K) can still need terabytes.
void checkHostMemory(const DemoOptions& o, int ranks) {
  const double bytes = estimateHostBytes(o, ranks);
  if (bytes <= static_cast<double>(o.maxMemory)) return;
  throw tools::UsageError("--ranks " + std::to_string(ranks) + " x --tokens " + std::to_string(o.tokens) +
                          " x --hidden " + std::to_string(o.hidden) + " with --topk " + std::to_string(o.topk) +
                          " needs about " + humanBytes(bytes) + " of host memory, over the limit of " +
                          humanBytes(static_cast<double>(o.maxMemory)) +
                          " (lower them, or raise the limit with --max-memory)");
}

}  // namespace nccl_moe::demo
