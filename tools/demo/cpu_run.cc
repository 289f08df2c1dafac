// The CPU reference alone: the layer of the whole group on the host (tools/harness/reference_layer).
#include <cstdio>

#include "tools/demo/report.h"
#include "tools/demo/runs.h"

namespace nccl_moe::demo {

int runOnCpu(const DemoOptions& o, const std::string& why) {
  harness::GroupInputs in;
  in.shape = GroupShape{o.ranks, o.experts, o.hidden, o.tokens, o.topk};
  if (Status s = checkGroupShape(in.shape); !s.isOk()) {
    std::fprintf(stderr, "nccl-moe-demo: %s\n", s.message().c_str());
    return 2;
  }
  std::printf("# nccl-moe-demo: EP group of %d ranks, %d experts (%d per rank), top-%d, %d tokens per "
              "rank, hidden %d, bf16%s, %s layout%s, seed %llu (CPU reference)\n",
              o.ranks, o.experts, in.shape.localExperts(), o.topk, o.tokens, o.hidden,
              o.fp8 ? " with FP8 E4M3 dispatch" : "", o.expertMajor() ? "expert-major" : "per-rank",
              o.pad > 1 ? (", pad " + std::to_string(o.pad)).c_str() : "", (unsigned long long)o.seed);
  std::printf("# %s\n", why.c_str());
  std::fflush(stdout);

  in = makeInputs(o, o.ranks);
  harness::LayerSettings settings;
  settings.layout.layout = o.expertMajor() ? OutputLayout::kExpertMajor : OutputLayout::kPerRank;
  settings.layout.padMultiple = o.pad;
  settings.fp8 = Fp8Options{o.fp8, false};
  harness::ReferenceLayer reference;
  if (Status s = harness::runReferenceLayer(in, settings, &reference); !s.isOk()) {
    std::fprintf(stderr, "nccl-moe-demo: %s\n", s.message().c_str());
    return 1;
  }
  InputCheck check;
  for (int r = 0; r < o.ranks; ++r) check.add(checkAgainstInput(o, in.routings[r], in.x[r], reference.combined[r]));
  std::printf("%s%s", rankTable(o, reference.layout).c_str(), inputCheckLine(check).c_str());
  return check.bad == 0 ? 0 : 1;
}

}  // namespace nccl_moe::demo
