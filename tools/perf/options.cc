#include "tools/perf/options.h"

#include <limits>

#include "misc/env.h"
#include "tools/common/loaded_nccl.h"
#include "tools/perf/table.h"

namespace nccl_moe::perf {

std::string aboutText() {
  std::string text =
      "Dispatch and combine bandwidth over the ranks a launcher starts (nccl-moe-run, mpirun, srun,\n"
      "torchrun: see docs/launching.md), from -b to -e tokens per rank (times -f each step; K = 1024,\n"
      "M = 1048576: -b 1K -e 4K runs 1024, 2048 and 4096), with the baselines: a device-to-device copy\n"
      "of the same bytes and NCCL all-to-all-v with a permutation kernel. Rank 0 prints the table.\n"
      "\n"
      "Columns (docs/benchmark.md):\n" +
      columnLegend() +
      "\n"
      "Exit status: 0 done (and every element checked right), 1 a failure in the run or a wrong element,\n"
      "2 a bad flag or environment (before any GPU work).\n"
      "Environment (NCCL_MOE_*, read by the library):\n";
  for (const std::string& line : paramTable()) text += "  " + line + "\n";
  return text;
}

tools::ParseOutcome parseOptions(int argc, const char* const* argv, Options* o, std::ostream& out) {
  tools::FlagSet flags({"nccl-moe-perf", "nccl-moe-run -np R [--mps] nccl-moe-perf [flags]", aboutText(),
                        tools::versionWithLoadedNccl()});
  flags.count("-b", "smallest tokens per rank", &o->minTokens, 1, kMaxTokensPerRank);
  flags.count("-e", "largest tokens per rank, at least -b", &o->maxTokens, 1, kMaxTokensPerRank);
  flags.integer("-f", "tokens multiplied by N each step, at least 2 when -b < -e", &o->factor, 1, 1024);
  flags.integer("-n", "timed iterations", &o->iters, 1, 1000000);
  flags.integer("-w", "warm-up iterations", &o->warmup, 0, 1000000);
  flags.integer("-c", "1: check every rank's dispatch rows and combine output against the CPU reference (#wrong), "
                "0: do not (#wrong N/A)", &o->check, 0, 1);
  flags.choice("-d", "type of the token rows and of combine", &o->dtype, {"bf16", "fp32"}, "TYPE");
  flags.integer("--experts", "experts in all, a multiple of the ranks", &o->experts, 1, 1 << 16);
  flags.integer("--topk", "experts per token, at most --experts", &o->topk, 1, 1024);
  flags.integer("--hidden", "elements per token row", &o->hidden, 1, 1 << 16);
  flags.toggle("--fp8", "FP8 dispatch (rows of -d TYPE otherwise)", &o->fp8);
  flags.toggle("--expert-major", "HybridEP layout (no all-to-all-v baseline)", &o->expertMajor);
  flags.toggle("--zero-copy", "x and the expert outputs written into the communicator's input areas beforehand",
               &o->zeroCopy);
  flags.integer("--sms", "SM budget of dispatch and of combine", &o->sms, 1, 1024);
  flags.integer("--seed", "seed of the routings", &o->seed, 0, std::numeric_limits<long long>::max());
  flags.text("--json", "FILE", "also write the table as JSON to FILE (by rank 0)", &o->json);
  flags.toggle("--low-latency", "time the low-latency calls (p50/p99, eager and graph-launched, host time) beside "
               "the high-throughput path and the copy floor; -n and -w default to " + std::to_string(kLowLatencyIters) +
               " and " + std::to_string(kLowLatencyWarmup), &o->lowLatency);
  flags.text("--tokens", "LIST", "--low-latency: tokens per rank, comma-separated, increasing, each in [1, 1024] "
             "(default " + o->tokensText + ")", &o->tokensText);
  flags.integer("--ll-max-tokens", "--low-latency: lowLatencyMaxTokens N of the communicators, at least the largest "
                "of --tokens (0: that largest)", &o->llMaxTokens, 0, kLowLatencyMaxTokens);
  flags.choice("--ll-dispatch", "--low-latency: dispatch types, one communicator each (both: bf16 and fp8)",
               &o->llDispatch, {"both", "bf16", "fp8", "fp8-pow2"}, "TYPE");
  const tools::ParseOutcome outcome = flags.parse(argc, argv, out);
  if (outcome != tools::ParseOutcome::kRun) return outcome;
  if (!o->lowLatency) {
    for (const char* flag : {"--tokens", "--ll-max-tokens", "--ll-dispatch"})
      if (flags.given(flag)) throw tools::UsageError(std::string(flag) + " is a --low-latency flag");
    return outcome;
  }
  for (const char* flag : {"-b", "-e", "-f"})
    if (flags.given(flag))
      throw tools::UsageError(std::string(flag) + " sets the high-throughput sweep; with --low-latency the token "
                              "counts are --tokens LIST");
  for (const char* flag : {"--fp8", "--expert-major", "--zero-copy"})
    if (flags.given(flag))
      throw tools::UsageError(std::string(flag) + " does not apply to --low-latency (its dispatch types are "
                              "--ll-dispatch; its rows are bf16 in the LL layout)");
  if (o->dtype != "bf16") throw tools::UsageError("-d " + o->dtype + ": the low-latency calls move bf16 rows");
  if (!flags.given("-n")) o->iters = kLowLatencyIters;
  if (!flags.given("-w")) o->warmup = kLowLatencyWarmup;
  o->tokens = parseTokenList("--tokens", o->tokensText);
  return outcome;
}

std::vector<int> parseTokenList(const std::string& flag, const std::string& text) {
  std::vector<int> tokens;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const int value = static_cast<int>(tools::parseCount(flag, item, 1, kLowLatencyMaxTokens));
    if (!tokens.empty() && value <= tokens.back())
      throw tools::UsageError(flag + ": " + std::to_string(value) + " after " + std::to_string(tokens.back()) +
                              ": the token counts must increase");
    tokens.push_back(value);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return tokens;
}

int Options::lowLatencyMaxTokens() const {
  if (llMaxTokens > 0) return llMaxTokens;
  return tokens.empty() ? 0 : tokens.back();
}

std::vector<std::string> Options::lowLatencyDispatchTypes() const {
  if (llDispatch == "both") return {"bf16", "fp8"};
  return {llDispatch};
}

void checkOptions(const Options& o) {
  if (o.minTokens > o.maxTokens)
    throw tools::UsageError("-b " + std::to_string(o.minTokens) + " is more than -e " + std::to_string(o.maxTokens));
  // The sweep multiplies the token count by the factor: 1 would never reach -e.
  if (o.minTokens < o.maxTokens && o.factor < 2)
    throw tools::UsageError("-f " + std::to_string(o.factor) + " must be at least 2 to step from -b " +
                            std::to_string(o.minTokens) + " to -e " + std::to_string(o.maxTokens));
  if (o.topk > o.experts)
    throw tools::UsageError("--topk " + std::to_string(o.topk) + " is more than --experts " +
                            std::to_string(o.experts) + " (a token picks distinct experts)");
  if (o.lowLatency && o.llMaxTokens > 0 && !o.tokens.empty() && o.llMaxTokens < o.tokens.back())
    throw tools::UsageError("--ll-max-tokens " + std::to_string(o.llMaxTokens) + " is less than the largest of --tokens, " +
                            std::to_string(o.tokens.back()));
}

void checkAgainstGroup(const Options& o, const RankLayout& layout) {
  if (o.experts % layout.size != 0)
    throw tools::UsageError("--experts " + std::to_string(o.experts) + " is not a multiple of the " +
                            std::to_string(layout.size) + " ranks (every rank holds as many experts)");
}

std::vector<int> tokenSweep(const Options& o) {
  if (o.lowLatency) return o.tokens;
  std::vector<int> tokens;
  for (long long t = o.minTokens; t <= o.maxTokens; t *= o.factor) {
    tokens.push_back(static_cast<int>(t));
    if (o.factor < 2) break;  // -b == -e: one step
  }
  return tokens;
}

}  // namespace nccl_moe::perf
