// The low-latency mode on the one-GPU virtual cluster (DESIGN.md section 5, docs/low_latency.md):
// nccl-moe-run starts 2, 4 or 8 ranks of nccl-moe-ll-rank-check under MPS, in one NVLink domain or
// in several virtual nodes (the two-hop path: NVLink inside a node by CUDA IPC, the network phase
// over NCCL's sockets between the processes); each compares its outputs with the CPU oracle bit for
// bit, or plays one failure scenario. The same command runs unchanged on a multi-GPU node. Skipped
// without a GPU.
#include <gtest/gtest.h>

#include <string>

#include "../support/gpu.h"
#include "cluster_command.h"
#include "virtual_cluster_paths.h"

namespace nccl_moe::test {
namespace {

struct LowLatencyCase {
  const char* name;
  int ranks;
  const char* args;
  int nodes = 1;     // virtual nodes = NVLink domains (several: the two-hop path)
  int limitS = 240;  // the launcher's limit for the whole job
};

int runCluster(const LowLatencyCase& c) {
  return runClusterJob({"", toolPath("NCCL_MOE_RUN_BIN", kNcclMoeRunPath),
                        toolPath("NCCL_MOE_LL_RANK_CHECK_BIN", kLowLatencyRankCheckPath), c.ranks, c.nodes, c.limitS,
                        c.args});
}

class LowLatencyCluster : public testing::TestWithParam<LowLatencyCase> {};

TEST_P(LowLatencyCluster, MatchesCpuOracle) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  EXPECT_EQ(runCluster(GetParam()), 0);
}

const LowLatencyCase kCases[] = {
    // Plain calls: dispatch, weighted and unweighted combine, outputs poisoned before each.
    {"r2_bf16", 2, "--experts 8 --topk 2 --tokens 16 --hidden 128 --iters 3"},
    {"r2_k1_t_from_0_to_max_uneven", 2, "--experts 4 --topk 1 --tokens 8 --hidden 64 --uneven --iters 8"},
    {"r4_uneven_zero_rank_masked", 4,
     "--experts 16 --topk 4 --tokens 32 --hidden 200 --uneven --zero-rank 2 --masked 0.3 --iters 3"},
    {"r4_k6_of_max8", 4, "--experts 32 --topk 6 --max-topk 8 --tokens 24 --hidden 96 --uneven"},
    {"r4_all_tokens_to_one_expert", 4, "--experts 8 --topk 1 --tokens 64 --hidden 64 --skew 60"},
    {"r4_hidden7168_bf16", 4, "--experts 16 --topk 4 --tokens 16 --hidden 7168"},
    {"r4_hidden7168_fp8", 4, "--experts 16 --topk 4 --tokens 16 --hidden 7168 --fp8 1 --uneven"},
    {"r8_fp8_pow2_odd_hidden_uneven", 8, "--experts 64 --topk 8 --tokens 16 --hidden 333 --fp8 2 --uneven"},
    {"r8_k8_t128", 8, "--experts 64 --topk 8 --tokens 128 --hidden 512 --iters 2"},
    {"r8_odd_hidden_masked_half", 8, "--experts 32 --topk 5 --tokens 20 --hidden 129 --masked 0.5 --uneven"},
    // Split halves: two outstanding of each kind, other work and overwritten inputs between the halves.
    {"r2_split_halves", 2, "--experts 8 --topk 2 --tokens 32 --hidden 256 --split --iters 3"},
    {"r4_split_fp8_uneven", 4, "--experts 16 --topk 4 --tokens 24 --hidden 384 --fp8 1 --uneven --split --iters 2"},
    // One CUDA graph replayed with fresh routing every time.
    {"r4_graph_100_replays", 4, "--experts 16 --topk 4 --tokens 32 --hidden 256 --masked 0.2 --graph 100 --iters 1"},
    {"r2_graph_split_halves_fp8", 2, "--experts 8 --topk 3 --tokens 16 --hidden 128 --fp8 1 --graph-split --graph 20 --iters 1"},
    // Bad routing found on the device: reported on every rank, nothing written.
    {"r4_bad_id_reported_everywhere", 4, "--experts 16 --topk 2 --tokens 8 --hidden 64 --bad-rank 1", 1, 60},
    {"r4_duplicate_id_reported_everywhere", 4, "--experts 16 --topk 3 --tokens 8 --hidden 64 --dup-rank 3", 1, 60},
    {"r4_topk_differs_reported_everywhere", 4, "--experts 16 --topk 3 --tokens 8 --hidden 64 --topk-rank 2", 1, 60},
    // A silent rank: the others time out naming it and the phase.
    {"r4_rank_dies_others_time_out", 4,
     "--experts 16 --topk 2 --tokens 8 --hidden 64 --dead-rank 1 --timeout-ms 3000", 1, 60},
    // Several NVLink domains (two hops: domains x ranks per domain), bit-exact against the oracle's
    // domain order (docs/low_latency.md section 5.3).
    {"n2x2_bf16_uneven_zero_rank_masked", 4,
     "--experts 16 --topk 4 --tokens 32 --hidden 200 --uneven --zero-rank 1 --masked 0.3 --iters 3", 2},
    {"n2x2_k1_t_from_0_to_max_uneven", 4, "--experts 8 --topk 1 --tokens 8 --hidden 64 --uneven --iters 8", 2},
    {"n2x2_all_tokens_to_one_expert", 4, "--experts 8 --topk 1 --tokens 64 --hidden 64 --skew 60", 2},
    {"n2x2_hidden7168_bf16", 4, "--experts 16 --topk 4 --tokens 16 --hidden 7168", 2},
    {"n2x2_hidden7168_fp8", 4, "--experts 16 --topk 4 --tokens 16 --hidden 7168 --fp8 1 --uneven", 2},
    {"n2x4_fp8_pow2_odd_hidden_uneven", 8, "--experts 64 --topk 8 --tokens 16 --hidden 333 --fp8 2 --uneven", 2},
    {"n2x4_k6_of_max8_masked_half", 8,
     "--experts 32 --topk 6 --max-topk 8 --tokens 24 --hidden 129 --masked 0.5 --uneven", 2},
    {"n2x4_k8_t128", 8, "--experts 64 --topk 8 --tokens 128 --hidden 512 --iters 2", 2},
    {"n4x1_bf16_uneven_masked", 4, "--experts 16 --topk 4 --tokens 24 --hidden 256 --uneven --masked 0.2 --iters 3",
     4},
    {"n4x1_fp8_all_tokens_to_one_expert", 4, "--experts 8 --topk 2 --tokens 32 --hidden 384 --fp8 1 --skew 60", 4},
    {"n2x2_split_halves", 4, "--experts 16 --topk 4 --tokens 32 --hidden 256 --split --iters 3", 2},
    {"n2x4_split_fp8_uneven", 8, "--experts 32 --topk 4 --tokens 24 --hidden 384 --fp8 1 --uneven --split --iters 2",
     2},
    {"n4x1_split_halves_masked", 4, "--experts 16 --topk 3 --tokens 16 --hidden 128 --masked 0.3 --split --iters 2",
     4},
    {"n2x2_graph_100_replays", 4, "--experts 16 --topk 4 --tokens 32 --hidden 256 --masked 0.2 --graph 100 --iters 1",
     2},
    {"n2x2_graph_split_halves_fp8", 4,
     "--experts 16 --topk 3 --tokens 16 --hidden 128 --fp8 1 --graph-split --graph 20 --iters 1", 2},
    {"n4x1_graph_50_replays", 4, "--experts 8 --topk 2 --tokens 16 --hidden 128 --uneven --graph 50 --iters 1", 4},
    {"n2x2_bad_id_reported_everywhere", 4, "--experts 16 --topk 2 --tokens 8 --hidden 64 --bad-rank 1", 2, 60},
    {"n2x2_duplicate_id_reported_everywhere", 4, "--experts 16 --topk 3 --tokens 8 --hidden 64 --dup-rank 3", 2, 60},
    {"n4x1_topk_differs_reported_everywhere", 4, "--experts 16 --topk 3 --tokens 8 --hidden 64 --topk-rank 2", 4,
     60},
    {"n2x2_rank_dies_others_time_out", 4,
     "--experts 16 --topk 2 --tokens 8 --hidden 64 --dead-rank 1 --timeout-ms 3000", 2, 90},
    {"n4x1_rank_dies_others_time_out", 4,
     "--experts 16 --topk 2 --tokens 8 --hidden 64 --dead-rank 2 --timeout-ms 3000", 4, 90},
    {"n2x4_rank_dies_others_time_out", 8,
     "--experts 32 --topk 4 --tokens 8 --hidden 64 --dead-rank 6 --timeout-ms 3000", 2, 90},
};

INSTANTIATE_TEST_SUITE_P(Gpu, LowLatencyCluster, testing::ValuesIn(kCases),
                         [](const testing::TestParamInfo<LowLatencyCase>& param) { return std::string(param.param.name); });

}  // namespace
}  // namespace nccl_moe::test
