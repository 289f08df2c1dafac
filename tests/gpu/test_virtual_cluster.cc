// The single-domain GPU path on the one-GPU virtual cluster (DESIGN.md §5): nccl-moe-run starts 2, 4
// or 8 ranks of nccl-moe-rank-check under MPS, each compares its outputs with the CPU reference bit
// for bit. The same command runs unchanged on a multi-GPU node. Skipped without a GPU.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../support/gpu.h"
#include "cluster_command.h"
#include "virtual_cluster_paths.h"

namespace nccl_moe::test {
namespace {

struct ClusterCase {
  const char* name;
  int ranks;
  const char* args;
  int nodes = 1;  // virtual nodes = NVLink domains; several run the two-hop path over NCCL sockets
  int limitS = 240;  // the launcher's limit for the whole job
  const char* env = "";  // assignments for the job's environment, e.g. "NCCL_MOE_NET_CHUNKS=3"
};

int runCluster(const ClusterCase& c) {
  return runClusterJob({c.env, toolPath("NCCL_MOE_RUN_BIN", kNcclMoeRunPath),
                        toolPath("NCCL_MOE_RANK_CHECK_BIN", kRankCheckPath), c.ranks, c.nodes, c.limitS, c.args});
}

class VirtualCluster : public testing::TestWithParam<ClusterCase> {};

TEST_P(VirtualCluster, MatchesCpuReference) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  EXPECT_EQ(runCluster(GetParam()), 0);
}

const ClusterCase kCases[] = {
    {"r2_topk_per_rank", 2, "--experts 8 --topk 2 --tokens 48 --hidden 128"},
    {"r2_map_expert_major_pad", 2, "--experts 8 --topk 3 --tokens 40 --hidden 96 --map --expert-major --pad 4"},
    {"r2_fp8_per_rank", 2, "--experts 16 --topk 4 --tokens 33 --hidden 384 --fp8"},
    {"r2_budget_overflow", 2, "--experts 4 --topk 2 --tokens 64 --hidden 64 --expert-major --pad 8 --budget 48"},
    {"r4_uneven_zero_rank", 4, "--experts 16 --topk 4 --tokens 64 --hidden 200 --uneven --zero-rank 2"},
    {"r4_skewed_masked_map", 4, "--experts 32 --topk 6 --tokens 50 --hidden 129 --skew 2 --masked 0.3 --map --fp32"},
    {"r4_hidden7168_fp8_pow2_expert_major", 4,
     "--experts 32 --topk 8 --tokens 64 --hidden 7168 --fp8 --pow2 --expert-major --pad 16"},
    {"r4_all_to_one_expert", 4, "--experts 8 --topk 1 --tokens 64 --hidden 64 --skew 60 --expert-major"},
    {"r8_topk_per_rank_phase_times", 8, "--experts 64 --topk 8 --tokens 128 --hidden 512 --iters 3 --phase-times"},
    {"r8_expert_major_budget", 8,
     "--experts 64 --topk 8 --tokens 96 --hidden 256 --expert-major --pad 8 --budget 512 --uneven"},
    {"r8_fp8_map_odd_hidden", 8, "--experts 32 --topk 4 --tokens 40 --hidden 333 --map --fp8"},
    {"r4_bad_routing_reported_everywhere", 4, "--experts 16 --topk 2 --tokens 16 --hidden 64 --bad-rank 1"},
    // A routing fault, then good layouts on the same handle (every kernel left its tickets at zero);
    // 300 tokens: two chunks of the count-first positions kernel.
    {"r4_bad_routing_then_good_layouts", 4,
     "--experts 16 --topk 2 --tokens 300 --hidden 64 --bad-rank 1 --bad-iters 1 --iters 3"},
    // More chunks than blocks: each block of the count-first positions kernel takes several chunks,
    // each waiting for the counts of the chunks before it (uneven: the chunk count differs by rank).
    {"r4_many_chunks_few_blocks", 4, "--experts 32 --topk 8 --tokens 1500 --hidden 64 --uneven --sms 2 --iters 3"},
    {"r2_many_chunks_expert_major", 2,
     "--experts 8 --topk 3 --tokens 1100 --hidden 64 --expert-major --pad 4 --sms 2 --iters 2"},
    {"r4_cuda_graph_replays_new_routing", 4,
     "--experts 16 --topk 4 --tokens 64 --hidden 256 --expert-major --pad 8 --budget 256 --graph 3"},
    {"r2_config_mismatch_refused", 2, "--experts 8 --topk 2 --tokens 32 --hidden 64 --config-mismatch"},
    {"r4_bad_config_on_one_rank_fails_everywhere", 4, "--experts 16 --topk 2 --tokens 32 --hidden 64 --bad-config-rank 2",
     1, 60},
    {"r4_rank_never_creates_others_time_out", 4,
     "--experts 16 --topk 2 --tokens 16 --hidden 64 --dead-rank 1 --dead-in-create --timeout-ms 3000", 1, 60},
    {"r2_topology_setting_differs_refused", 2, "--experts 8 --topk 2 --tokens 32 --hidden 64 --no-topology-rank 1", 1,
     60},
    {"r2_stale_handle_after_recreate", 2, "--experts 8 --topk 2 --tokens 32 --hidden 64 --stale"},
    {"r4_resize_grow_refuse_shrink", 4, "--experts 16 --topk 4 --tokens 48 --hidden 136 --uneven --iters 2 --resize"},
    {"r2_resize_zero_copy_fp8", 2, "--experts 8 --topk 2 --tokens 40 --hidden 256 --fp8 --zero-copy --resize"},
    {"r2_failed_layout_refused_until_redone", 2, "--experts 8 --topk 2 --tokens 32 --hidden 64 --failed-layout --iters 3"},
    {"r4_silent_rank_times_out", 4, "--experts 16 --topk 2 --tokens 16 --hidden 64 --dead-rank 3 --timeout-ms 3000"},
    // Two-hop (HybridEP): virtual nodes x ranks per node.
    {"n2x2_topk_per_rank", 4, "--experts 16 --topk 4 --tokens 48 --hidden 128 --iters 3", 2},
    {"n2x2_resize_grow_refuse_shrink", 4, "--experts 16 --topk 4 --tokens 48 --hidden 128 --uneven --resize", 2},
    {"n2x2_map_expert_major_pad_uneven", 4,
     "--experts 16 --topk 3 --tokens 40 --hidden 96 --map --expert-major --pad 4 --uneven --zero-rank 1", 2},
    {"n2x4_fp8_hidden7168", 8, "--experts 64 --topk 8 --tokens 64 --hidden 7168 --fp8", 2},
    {"n2x4_skewed_masked_fp32_odd", 8, "--experts 32 --topk 6 --tokens 50 --hidden 129 --skew 2 --masked 0.3 --fp32", 2},
    {"n4x2_expert_major_budget", 8,
     "--experts 32 --topk 8 --tokens 64 --hidden 256 --expert-major --pad 8 --budget 304 --uneven", 4},
    {"n4x2_fp8_pow2_map_all_to_one", 8, "--experts 16 --topk 1 --tokens 64 --hidden 384 --fp8 --pow2 --map --skew 60",
     4},
    {"n4x1_nccl_only", 4, "--experts 16 --topk 4 --tokens 40 --hidden 200 --zero-rank 3", 4},
    {"n2x2_cuda_graph_replays_new_routing", 4,
     "--experts 16 --topk 4 --tokens 64 --hidden 256 --expert-major --pad 8 --budget 256 --graph 3", 2},
    {"r4_rank_dies_before_combine_times_out", 4,
     "--experts 16 --topk 2 --tokens 16 --hidden 64 --dead-rank 1 --dead-in-combine --timeout-ms 3000", 1, 60},
    {"n2x2_rank_dies_before_combine_times_out", 4,
     "--experts 16 --topk 2 --tokens 16 --hidden 64 --dead-rank 3 --dead-in-combine --timeout-ms 3000", 2, 60},
    {"r4_rank_skips_destroy_others_complete", 4,
     "--experts 16 --topk 2 --tokens 16 --hidden 64 --dead-rank 2 --dead-in-destroy --timeout-ms 3000", 1, 60},
    {"n2x2_rank_skips_destroy_others_complete", 4,
     "--experts 16 --topk 2 --tokens 16 --hidden 64 --dead-rank 0 --dead-in-destroy --timeout-ms 3000", 2, 60},
    {"n2x2_rank_dies_in_graph_replay_times_out", 4,
     "--experts 16 --topk 4 --tokens 64 --hidden 256 --expert-major --pad 8 --budget 256 --graph 1 --dead-rank 3 "
     "--dead-in-replay --timeout-ms 3000",
     2, 90},
    {"r4_rank_dies_in_graph_replay_times_out", 4,
     "--experts 16 --topk 4 --tokens 64 --hidden 256 --expert-major --pad 8 --budget 256 --graph 1 --dead-rank 2 "
     "--dead-in-replay --timeout-ms 3000",
     1, 90},
    {"n2x2_bad_routing_reported_everywhere", 4, "--experts 16 --topk 2 --tokens 16 --hidden 64 --bad-rank 2", 2},
    {"n2x2_bad_routing_then_good_layouts", 4,
     "--experts 16 --topk 2 --tokens 300 --hidden 64 --bad-rank 2 --bad-iters 1 --iters 3", 2},
    {"n2x2_many_chunks_few_blocks", 4, "--experts 16 --topk 4 --tokens 1100 --hidden 64 --uneven --sms 3 --iters 2", 2},
    {"n2x2_silent_rank_times_out", 4,
     "--experts 16 --topk 2 --tokens 16 --hidden 64 --dead-rank 3 --timeout-ms 3000", 2, 60},
    // The rest of the dying-rank matrix: a dispatch on one domain, a creation across domains.
    {"r4_rank_dies_mid_dispatch_times_out", 4,
     "--experts 16 --topk 2 --tokens 16 --hidden 64 --dead-rank 2 --dead-in-dispatch --timeout-ms 3000", 1, 60},
    {"n2x2_rank_never_creates_others_time_out", 4,
     "--experts 16 --topk 2 --tokens 16 --hidden 64 --dead-rank 2 --dead-in-create --timeout-ms 3000", 2, 60},
    {"n2x2_rank_dies_mid_dispatch_times_out", 4,
     "--experts 16 --topk 2 --tokens 16 --hidden 64 --dead-rank 3 --dead-in-dispatch --timeout-ms 3000", 2, 60},
    // Chunked network phase (the defaults give these small shapes one chunk): chunks that divide the
    // slot, one short last chunk, one row per chunk, and the failure paths with chunks in flight.
    {"n2x2_chunks3_topk_per_rank_phase_times", 4,
     "--experts 16 --topk 4 --tokens 48 --hidden 128 --iters 3 --phase-times", 2, 240, "NCCL_MOE_NET_CHUNKS=3"},
    {"n2x4_chunks4_fp8_hidden7168_uneven", 8, "--experts 64 --topk 8 --tokens 64 --hidden 7168 --fp8 --uneven", 2,
     240, "NCCL_MOE_NET_CHUNKS=4"},
    {"n4x2_chunks5_expert_major_budget", 8,
     "--experts 32 --topk 8 --tokens 64 --hidden 256 --expert-major --pad 8 --budget 304 --uneven --map", 4, 240,
     "NCCL_MOE_NET_CHUNKS=5"},
    {"n4x1_chunks_of_one_row_nccl_only", 4, "--experts 16 --topk 4 --tokens 40 --hidden 200 --zero-rank 3", 4, 240,
     "NCCL_MOE_NET_CHUNKS=64"},
    {"n2x2_chunks2_cuda_graph_replays_new_routing", 4,
     "--experts 16 --topk 4 --tokens 64 --hidden 256 --expert-major --pad 8 --budget 256 --graph 3", 2, 240,
     "NCCL_MOE_NET_CHUNKS=2"},
    {"n2x2_chunks4_rank_dies_mid_dispatch_times_out", 4,
     "--experts 16 --topk 2 --tokens 16 --hidden 64 --dead-rank 3 --dead-in-dispatch --timeout-ms 3000", 2, 60,
     "NCCL_MOE_NET_CHUNKS=4"},
    // Zero-copy inputs (ncclMoeCommGetInputBuffers): rows written into the input areas, the next rows
    // written right after each call with no host wait, a pointer inside an area and an expert-major
    // combine refused, FP8 (no dispatch area).
    {"r4_zero_copy_per_rank_uneven", 4, "--experts 16 --topk 4 --tokens 64 --hidden 200 --uneven --zero-copy --iters 3"},
    {"r8_zero_copy_expert_major", 8, "--experts 64 --topk 8 --tokens 96 --hidden 256 --expert-major --pad 8 --zero-copy"},
    {"r2_zero_copy_fp8_map", 2, "--experts 8 --topk 2 --tokens 48 --hidden 384 --fp8 --map --zero-copy"},
    {"n2x2_zero_copy_chunks2", 4, "--experts 16 --topk 4 --tokens 48 --hidden 128 --zero-copy --iters 3", 2, 240,
     "NCCL_MOE_NET_CHUNKS=2"},
    {"n2x4_zero_copy_fp32_skewed", 8, "--experts 32 --topk 6 --tokens 50 --hidden 129 --skew 2 --fp32 --zero-copy", 2},
    // One rank with a row budget (non-blocking), the others blocking: every rank must move whole
    // slots (the budget is never reached, so the reference is the unbudgeted one).
    {"n2x2_one_budgeted_rank_whole_slots", 4,
     "--experts 16 --topk 4 --tokens 48 --hidden 128 --expert-major --pad 4 --budget 100000 --budget-rank 1 --iters 2",
     2, 240, "NCCL_MOE_NET_CHUNKS=3"},
    // Windowed combine (combineWindowTokens): partials of W tokens per source at a time, two windows
    // in flight; the same bits as without windows. Uneven and empty ranks (windows past a rank's
    // tokens), expert-major sums, a routing map with masked slots and odd fp32 rows over few blocks
    // and many windows, one-token windows, all tokens to one expert, graph replays with new routing,
    // resize, no combine input area (zero-copy dispatch still), a rank that dies in the combine.
    {"r4_window_uneven_zero_rank", 4,
     "--experts 16 --topk 4 --tokens 100 --hidden 200 --uneven --zero-rank 2 --combine-window 16 --iters 2"},
    {"r2_window_expert_major_fp8", 2,
     "--experts 8 --topk 3 --tokens 70 --hidden 96 --expert-major --pad 4 --fp8 --combine-window 7"},
    {"r8_window_map_masked_fp32_odd_few_blocks", 8,
     "--experts 32 --topk 6 --tokens 64 --hidden 333 --map --fp32 --masked 0.3 --skew 2 --combine-window 5 --sms 2"},
    {"r2_window_of_one_token", 2, "--experts 8 --topk 2 --tokens 20 --hidden 64 --uneven --combine-window 1"},
    {"r4_window_all_to_one_expert", 4, "--experts 8 --topk 1 --tokens 64 --hidden 64 --skew 60 --combine-window 3"},
    {"r4_window_graph_replays_new_routing", 4,
     "--experts 16 --topk 4 --tokens 64 --hidden 256 --expert-major --pad 8 --budget 256 --graph 3 --combine-window 10"},
    {"r4_window_resize", 4, "--experts 16 --topk 4 --tokens 48 --hidden 136 --uneven --iters 2 --resize --combine-window 8"},
    {"r4_window_no_combine_input_area", 4,
     "--experts 16 --topk 2 --tokens 64 --hidden 128 --zero-copy --combine-window 8 --iters 2"},
    {"n2x2_window_ignored_with_two_domains", 4,
     "--experts 16 --topk 4 --tokens 48 --hidden 128 --zero-copy --combine-window 8", 2},
    {"r4_window_rank_dies_in_combine_times_out", 4,
     "--experts 16 --topk 2 --tokens 64 --hidden 64 --combine-window 8 --dead-rank 1 --dead-in-combine --timeout-ms 3000",
     1, 60},
};

INSTANTIATE_TEST_SUITE_P(Gpu, VirtualCluster, testing::ValuesIn(kCases),
                         [](const testing::TestParamInfo<ClusterCase>& param) { return std::string(param.param.name); });

// The cases above run the default layout engine (count-first, engine 2). The earlier scan engine
// (NCCL_MOE_LAYOUT_ENGINE=0), kept as a fallback, must give the same handle, so the same data: the
// shapes above that cover every layout feature (per-rank and expert-major rows, padding, budgets and
// overflow, maps, FP8, skew, masked and empty ranks, uneven counts, two-hop with chunks, graph
// replays with new routing, a bad routing), and the engine setting compared across ranks.
const char* const kScanEngineCases[] = {
    "r2_topk_per_rank",       "r2_map_expert_major_pad",          "r2_fp8_per_rank",
    "r2_budget_overflow",     "r4_uneven_zero_rank",              "r4_skewed_masked_map",
    "r4_all_to_one_expert",   "r8_topk_per_rank_phase_times",     "r8_expert_major_budget",
    "r8_fp8_map_odd_hidden",  "r4_bad_routing_reported_everywhere", "r4_cuda_graph_replays_new_routing",
    "n2x2_topk_per_rank",     "n2x2_map_expert_major_pad_uneven", "n2x4_skewed_masked_fp32_odd",
    "n4x2_expert_major_budget", "n4x2_fp8_pow2_map_all_to_one",   "n4x1_nccl_only",
    "n2x2_cuda_graph_replays_new_routing", "n2x2_bad_routing_reported_everywhere",
    "n2x2_chunks3_topk_per_rank_phase_times", "n4x2_chunks5_expert_major_budget",
    "r8_zero_copy_expert_major", "n2x2_one_budgeted_rank_whole_slots", "r4_bad_routing_then_good_layouts",
    "r4_many_chunks_few_blocks",
};

// The named cases with `setting` added to their environment (the cases point into `envs`, which
// must outlive them).
template <size_t N>
std::vector<ClusterCase> casesWith(const char* const (&names)[N], const char* setting, std::vector<std::string>* envs) {
  envs->reserve(N);
  std::vector<ClusterCase> cases;
  for (const char* name : names)
    for (const ClusterCase& c : kCases)
      if (std::string(c.name) == name) {
        envs->push_back(std::string(c.env) + " " + setting);
        ClusterCase engine = c;
        engine.env = envs->back().c_str();
        cases.push_back(engine);
      }
  return cases;
}

std::vector<ClusterCase> scanEngineCases() {
  static std::vector<std::string> envs;
  std::vector<ClusterCase> cases = casesWith(kScanEngineCases, "NCCL_MOE_LAYOUT_ENGINE=0", &envs);
  cases.push_back({"r2_layout_engine_differs_refused", 2,
                   "--experts 8 --topk 2 --tokens 32 --hidden 64 --other-engine-rank 1", 1, 60,
                   "NCCL_MOE_LAYOUT_ENGINE=0"});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(GpuScanEngine, VirtualCluster, testing::ValuesIn(scanEngineCases()),
                         [](const testing::TestParamInfo<ClusterCase>& param) { return std::string(param.param.name); });

// The cases above run the default layout engine (2: the count-first steps in one kernel with one
// NVLink domain, two kernels with several). Engine 1, the same steps in two kernels with one domain
// too, must give the same handle: every layout feature again, more chunks than blocks, no tokens on
// a rank, a fault then good layouts on the same handle, graph replays, a rank that dies.
const char* const kTwoLaunchEngineCases[] = {
    "r2_topk_per_rank",       "r2_map_expert_major_pad",          "r2_fp8_per_rank",
    "r2_budget_overflow",     "r4_uneven_zero_rank",              "r4_skewed_masked_map",
    "r4_all_to_one_expert",   "r8_topk_per_rank_phase_times",     "r8_expert_major_budget",
    "r8_fp8_map_odd_hidden",  "r4_bad_routing_reported_everywhere", "r4_cuda_graph_replays_new_routing",
    "r8_zero_copy_expert_major", "r4_bad_routing_then_good_layouts", "r4_many_chunks_few_blocks",
    "r2_many_chunks_expert_major", "r2_failed_layout_refused_until_redone", "n2x2_topk_per_rank",
    "n2x2_many_chunks_few_blocks", "r4_rank_dies_in_graph_replay_times_out", "r4_rank_dies_before_combine_times_out",
    "r4_silent_rank_times_out",
};

std::vector<ClusterCase> twoLaunchEngineCases() {
  static std::vector<std::string> envs;
  std::vector<ClusterCase> cases = casesWith(kTwoLaunchEngineCases, "NCCL_MOE_LAYOUT_ENGINE=1", &envs);
  cases.push_back({"r2_layout_engine_differs_refused", 2,
                   "--experts 8 --topk 2 --tokens 32 --hidden 64 --other-engine-rank 1", 1, 60,
                   "NCCL_MOE_LAYOUT_ENGINE=1"});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(GpuTwoLaunchEngine, VirtualCluster, testing::ValuesIn(twoLaunchEngineCases()),
                         [](const testing::TestParamInfo<ClusterCase>& param) { return std::string(param.param.name); });

// Every named case exists (a renamed case must not silently leave an engine untested).
TEST(ScanEngineCases, EveryNameIsACase) {
  auto check = [](const char* name) {
    bool found = false;
    for (const ClusterCase& c : kCases) found = found || std::string(c.name) == name;
    EXPECT_TRUE(found) << name;
  };
  for (const char* name : kScanEngineCases) check(name);
  for (const char* name : kTwoLaunchEngineCases) check(name);
}

}  // namespace
}  // namespace nccl_moe::test
