// nccl-moe-perf's command line: the flags (nccl-tests' -b/-e/-f/-n/-w/-c/-d and ours), their
// ranges, the constraints between them, and the token counts they sweep. Host code only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nccl_moe_bootstrap.h"
#include "tools/common/flags.h"

namespace nccl_moe::perf {

struct Options {
  int minTokens = 128;  // -b, tokens per rank
  int maxTokens = 4096;  // -e
  int factor = 2;        // -f
  int iters = 20;        // -n
  int warmup = 5;        // -w
  int check = 1;         // -c: 1 compares the outputs with the CPU reference, 0 does not
  std::string dtype = "bf16";  // -d: the token rows' type (combine's too)
  int experts = 256;
  int topk = 8;
  int hidden = 7168;
  bool fp8 = false;
  bool expertMajor = false;
  bool zeroCopy = false;  // inputs in the communicator's input areas (ncclMoeCommGetInputBuffers)
  int sms = 24;
  uint64_t seed = 1;
  std::string json;
  // --low-latency: the LL calls (docs/low_latency.md) at a list of token counts, with the HT path
  // and the copy floor of the same bytes in the same run.
  bool lowLatency = false;
  std::string tokensText = "1,8,32,128,256";  // --tokens LIST
  std::vector<int> tokens;                     // parsed from tokensText (parseOptions)
  int llMaxTokens = 0;                         // --ll-max-tokens: N; 0: the largest of --tokens
  std::string llDispatch = "both";             // --ll-dispatch: both (bf16 and fp8), bf16, fp8, fp8-pow2

  bool fp32() const { return dtype == "fp32"; }
  // N of the LL communicators: --ll-max-tokens, else the largest token count.
  int lowLatencyMaxTokens() const;
  // The dispatch types of --ll-dispatch, one communicator each: "bf16", "fp8", "fp8-pow2".
  std::vector<std::string> lowLatencyDispatchTypes() const;
};

// With --low-latency, -n and -w default to these (many calls: p99 needs them).
constexpr int kLowLatencyIters = 1000;
constexpr int kLowLatencyWarmup = 100;
// The LL limit of lowLatencyMaxTokens.
constexpr int kLowLatencyMaxTokens = 1024;

// "1,8,32" -> {1, 8, 32}: counts (K suffixes allowed) in [1, kLowLatencyMaxTokens], strictly
// increasing. Throws tools::UsageError naming `flag`.
std::vector<int> parseTokenList(const std::string& flag, const std::string& text);

constexpr int kMaxTokensPerRank = 1 << 20;

// --help's text below the flags: what the program does, the columns, the environment.
std::string aboutText();

// Parses argv into `o` (--help and --version answered). Throws tools::UsageError.
tools::ParseOutcome parseOptions(int argc, const char* const* argv, Options* o, std::ostream& out);

// The constraints between flags. Throws tools::UsageError.
void checkOptions(const Options& o);

// What the flags need of the group the launcher started. Throws tools::UsageError.
void checkAgainstGroup(const Options& o, const RankLayout& layout);

// The token counts of the sweep: -b, -b x -f, ... while at most -e (-e itself only when a step
// lands on it, as nccl-tests' sizes); with --low-latency, --tokens.
std::vector<int> tokenSweep(const Options& o);

}  // namespace nccl_moe::perf
