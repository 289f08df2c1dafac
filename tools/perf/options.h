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

  bool fp32() const { return dtype == "fp32"; }
};

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
// lands on it, as nccl-tests' sizes).
std::vector<int> tokenSweep(const Options& o);

}  // namespace nccl_moe::perf
