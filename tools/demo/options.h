// nccl-moe-demo's command line: the flags, the constraints between them against the group that
// runs (--ranks on the CPU reference, the launched ranks on GPUs), and the host memory the run
// needs. Host code only.
#pragma once

#include <cstdint>
#include <string>

#include "tools/common/flags.h"

namespace nccl_moe::demo {

struct DemoOptions {
  int ranks = 8;
  bool ranksGiven = false;  // --ranks was on the command line
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
  bool cpu = false;                  // the CPU reference alone, even with a GPU
  int iters = 10;                    // timed calls of each step on GPUs

  bool expertMajor() const { return layout == "expert-major"; }
};

std::string aboutText();

tools::ParseOutcome parseOptions(int argc, const char* const* argv, DemoOptions* o, std::ostream& out);

// The constraints between flags for a group of `ranks`: --ranks on the CPU reference
// (`launched` false), the processes a launcher started on GPUs (`launched` true; --ranks, when
// given, must then agree). Throws tools::UsageError.
void checkOptions(const DemoOptions& o, int ranks, bool launched);

// An upper bound of the host bytes the reference of a group of `ranks` holds at once; refused
// (UsageError) over --max-memory, before anything is allocated.
double estimateHostBytes(const DemoOptions& o, int ranks);
void checkHostMemory(const DemoOptions& o, int ranks);

// "1.50 GiB".
std::string humanBytes(double bytes);

}  // namespace nccl_moe::demo
