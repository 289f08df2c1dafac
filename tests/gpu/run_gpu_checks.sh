#!/usr/bin/env bash
# Every GPU check of the project in one command, on a machine with one GPU or more (the suites run
# on the one-GPU virtual cluster: nccl-moe-run --mps). Writes each part's log under OUT_DIR and
# prints a summary line per part. Usage:
#
#   tests/gpu/run_gpu_checks.sh [OUT_DIR]        # default OUT_DIR: gpu-checks
#
# Settings (environment):
#   NCCL_MOE_BUILD   build directory (default: build): its src/libnccl_moe.so, tools/nccl-moe-run,
#                    tools/nccl-moe-perf, tests/nccl-moe-rank-check, tests/gpu/* are used, so a
#                    build copied from another machine works
#   PARTS            which parts, in order (default: "vc ll unit py san torchrun mega"):
#                      vc        the virtual-cluster suite (correctness and failure cases)
#                      ll        the low-latency virtual-cluster suite, and memcheck, racecheck and
#                                synccheck of a small low-latency run on 2 ranks, and memcheck on
#                                2x2 ranks (the two-hop LL path)
#                      unit      the single-process GPU tests (FP8 kernels)
#                      py        the Python GPU suite (python/tests/gpu/run_rank_tests.py)
#                      san       compute-sanitizer memcheck, racecheck, synccheck on 2 ranks, and
#                                memcheck on 2x2 ranks (two-hop)
#                      torchrun  nccl-moe-perf with -c 1 on 2 ranks started by torchrun
#                      tools     the GPU cases of the tool, launcher and plugin tests (the programs
#                                hold their build directory's paths: see tests/gpu/pack_build.sh)
#                      mega      the Megatron-Core release matrix (python/tests/megatron)
#                      lltrace   not a check: where an LL call's time goes (NCCL_MOE_LL_TRACE=1, docs/low_latency.md
#                                section 11) at T = 1, 128 and 256 on 8 ranks, bf16 dispatch and combine
#                      ncu       not a check: ncu of the HT kernels (256, 4096 tokens) and the LL kernels
#                                (T = 1, 128) on one rank
#                      peer      not a check: DeepEP side by side (RESULTS.md's headline) from the patched
#                                harness copy in .peer (tools/perf/peer/harness_additions.patch says how
#                                to make it; carry it); PEER_CONFIGS (default "8:16 4:24"), PEER_BUDGET_S (530)
#                      probe     not a check: what one cross-rank wait costs (nccl-moe-signal-probe)
#                                on 2 and 8 ranks, with and without MPS; PROBE_SECONDS limits each run (120)
#                      copy      not a check: how fast kernels write to and read from peers' memory on 8
#                                ranks under MPS (nccl-moe-copy-probe), against a local copy and memcpy
#                      latency   not a check: fixed costs in one minute: the low-latency calls at T = 1
#                                on 2 and 8 ranks, and the high-throughput layout, dispatch and combine
#                                at 8 ranks x 16 SMs, 256 and 1024 tokens, checked bit for bit (-c 1)
#   VC_FILTER        gtest filter for the vc part; VC_SECONDS its limit (default 600)
#   PY_RANKS         ranks of the py part (default 2); PY_NODES its virtual nodes (NVLink domains;
#                    default one); PY_ARGS extra arguments (e.g. --only ncclep)
#   SAN_TOOLS        sanitizer tools of the san part (default "memcheck racecheck synccheck"); the
#                    ll part runs the same tools (" " runs none of the loop's)
#   NCCL_MOE_MEGATRON_WHEELS, RELEASES, ORDERS, RANKS, BUDGET_S: see python/tests/megatron/run_releases.sh
#   ARCHIVE          a .tgz path (e.g. under the device's $OUT): OUT_DIR is archived there after every
#                    part, so the logs of the parts that finished come back even when the run is cut short
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-gpu-checks}
mkdir -p "$out"
build=$(cd "${NCCL_MOE_BUILD:-build}" && pwd)
export NCCL_NVLS_ENABLE=0  # no NVLink multicast objects on shared machines
export LD_LIBRARY_PATH="$build/src${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
run="$build/tools/nccl-moe-run --mps --fail-grace 20"
check="$build/tests/nccl-moe-rank-check"
start=$SECONDS
elapsed() { echo "$((SECONDS - start)) s"; }

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
if [ -f "$build/BUILT_FROM" ]; then echo "build made from: $(cat "$build/BUILT_FROM")"; else git log --oneline -1 2>/dev/null; fi

part_vc() {
  NCCL_MOE_RUN_BIN="$build/tools/nccl-moe-run" NCCL_MOE_RANK_CHECK_BIN="$check" timeout "${VC_SECONDS:-600}" \
    "$build/tests/gpu/nccl_moe_virtual_cluster_tests" ${VC_FILTER:+--gtest_filter=$VC_FILTER} > "$out/vc.log" 2>&1
  echo "vc: exit $? after $(elapsed): $(grep -c '^\[       OK \]' "$out/vc.log") passed, $(grep -c '^\[  FAILED  \]' "$out/vc.log") failed"
  grep '^\[  FAILED  \]' "$out/vc.log" | sed 's/, where GetParam.*//' | sort -u
}

part_ll() {
  NCCL_MOE_RUN_BIN="$build/tools/nccl-moe-run" NCCL_MOE_LL_RANK_CHECK_BIN="$build/tests/nccl-moe-ll-rank-check" \
    timeout "${VC_SECONDS:-600}" "$build/tests/gpu/nccl_moe_ll_cluster_tests" ${LL_FILTER:+--gtest_filter=$LL_FILTER} \
    > "$out/ll.log" 2>&1
  echo "ll: exit $? after $(elapsed): $(grep -c '^\[       OK \]' "$out/ll.log") passed, $(grep -c '^\[  FAILED  \]' "$out/ll.log") failed"
  grep '^\[  FAILED  \]' "$out/ll.log" | sed 's/, where GetParam.*//' | sort -u
  local sanitizer="compute-sanitizer --error-exitcode 9 --print-limit 20 --report-api-errors no"
  for tool in ${SAN_TOOLS:-memcheck racecheck synccheck}; do
    timeout 150 $run -np 2 --timeout 140 -- $sanitizer --tool "$tool" "$build/tests/nccl-moe-ll-rank-check" \
      --experts 8 --topk 2 --tokens 16 --hidden 128 --fp8 1 --split --iters 1 > "$out/ll_san_${tool}.log" 2>&1
    echo "ll san $tool: exit $? after $(elapsed): $(grep -hE 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/ll_san_${tool}.log" | sort -u | tr '\n' ' ')"
  done
  # The two-hop LL path (two virtual nodes of two ranks): relay, network tails, node partials.
  timeout 200 $run -np 4 --nodes 2 --timeout 190 -- $sanitizer --tool memcheck "$build/tests/nccl-moe-ll-rank-check" \
    --experts 16 --topk 3 --tokens 16 --hidden 128 --fp8 1 --uneven --split --iters 1 > "$out/ll_san_memcheck_2x2.log" 2>&1
  echo "ll san memcheck 2x2: exit $? after $(elapsed): $(grep -hE 'ERROR SUMMARY' "$out/ll_san_memcheck_2x2.log" | sort -u | tr '\n' ' ')"
}

part_unit() {
  "$build/tests/gpu/nccl_moe_gpu_tests" > "$out/gpu_unit.log" 2>&1
  echo "unit: exit $? after $(elapsed): $(grep -E '^\[  (PASSED|FAILED) ' "$out/gpu_unit.log" | tr '\n' ' ')"
}

part_py() {
  NCCL_MOE_LIBRARY="$build/src/libnccl_moe.so" timeout 300 $run -np "${PY_RANKS:-2}" ${PY_NODES:+--nodes $PY_NODES} \
    --timeout 280 -- \
    python3 python/tests/gpu/run_rank_tests.py ${PY_ARGS:-} > "$out/py.log" 2>&1
  echo "py: exit $? after $(elapsed): $(grep -c 'PASS ' "$out/py.log") lines PASS, $(grep -c 'FAIL' "$out/py.log") FAIL"
  grep -E 'RESULT' "$out/py.log" | head -1
}

part_san() {
  # API errors are not reported: NCCL's own initialisation probes kernels of other architectures
  # (cudaErrorNoKernelImageForDevice), which is not an error of this project's code.
  local sanitizer="compute-sanitizer --error-exitcode 9 --print-limit 20 --report-api-errors no"
  for tool in ${SAN_TOOLS:-memcheck racecheck synccheck}; do
    timeout 150 $run -np 2 --timeout 140 -- $sanitizer --tool "$tool" "$check" --experts 8 --topk 2 --tokens 32 \
      --hidden 128 --iters 2 > "$out/san_${tool}_1x2.log" 2>&1
    echo "san $tool 1x2: exit $? after $(elapsed): $(grep -hE 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/san_${tool}_1x2.log" | sort -u | tr '\n' ' ')"
  done
  timeout 200 $run -np 4 --nodes 2 --timeout 190 -- $sanitizer --tool memcheck "$check" --experts 16 --topk 4 --tokens 32 \
    --hidden 128 --fp8 --expert-major --pad 4 > "$out/san_memcheck_2x2.log" 2>&1
  echo "san memcheck 2x2: exit $? after $(elapsed): $(grep -hE 'ERROR SUMMARY' "$out/san_memcheck_2x2.log" | sort -u | tr '\n' ' ')"
}

part_torchrun() {
  # Two ranks on one GPU under torchrun: MPS lets their kernels run side by side, and each rank
  # gets its own NCCL host id so that NCCL accepts two ranks on one GPU.
  local mps_started=0
  if [ -z "${CUDA_MPS_PIPE_DIRECTORY:-}" ] && command -v nvidia-cuda-mps-control > /dev/null; then
    export CUDA_MPS_PIPE_DIRECTORY=/tmp/nccl-moe-mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/nccl-moe-mps-log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    nvidia-cuda-mps-control -d && mps_started=1
  fi
  timeout 200 python3 -m torch.distributed.run --no-python --nproc_per_node 2 --master_port 29610 bash -c \
    "NCCL_HOSTID=torchrun-\$LOCAL_RANK exec $build/tools/nccl-moe-perf -b 256 -e 1K -f 4 -n 5 -w 2 --sms 24 -c 1" \
    > "$out/torchrun_perf.log" 2>&1
  echo "torchrun perf: exit $? after $(elapsed)"
  grep -vE '^\s*$' "$out/torchrun_perf.log" | tail -12
  if [ "$mps_started" = 1 ]; then
    echo quit | nvidia-cuda-mps-control
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
  fi
}

part_tools() {
  local filter='*Gpu*'
  for program in tests/tools/tool_cli_tests tests/launcher/launcher_gpu_tests tests/plugin/plugin_gpu_tests \
      tests/plugin/plugin_abi_tests; do
    local log="$out/tools_$(basename "$program").log"
    timeout 300 "$build/$program" --gtest_filter="$filter" > "$log" 2>&1
    echo "tools $(basename "$program"): exit $? after $(elapsed): $(grep -c '^\[       OK \]' "$log") passed," \
      "$(grep -c '^\[  SKIPPED \]' "$log") skipped, $(grep -c '^\[  FAILED  \]' "$log") failed"
    grep '^\[  FAILED  \]' "$log" | sort -u
  done
}

part_probe() {
  local probe="$build/tests/nccl-moe-signal-probe"
  for ranks in 2 8; do
    for mps in --mps ""; do
      timeout "${PROBE_SECONDS:-120}" $build/tools/nccl-moe-run -np "$ranks" $mps --timeout "$((${PROBE_SECONDS:-120} - 10))" \
        -- "$probe" --rounds 1000 \
        > "$out/probe_${ranks}${mps:+_mps}.log" 2>&1
      echo "probe $ranks ranks ${mps:-no MPS}: exit $? after $(elapsed)"
      grep -E '^\[rank 0\] ' "$out/probe_${ranks}${mps:+_mps}.log" | sed 's/^\[rank 0\] //'
    done
  done
}

# Writing into peers' memory against reading from it, 8 ranks under MPS (the LL send halves push).
part_copy() {
  timeout 120 $run -np 8 --timeout 110 -- "$build/tests/nccl-moe-copy-probe" > "$out/copy_probe_8_mps.log" 2>&1
  echo "copy probe 8 ranks MPS: exit $? after $(elapsed)"
  grep -E '^\[rank 0\] ' "$out/copy_probe_8_mps.log" | sed 's/^\[rank 0\] //'
}

part_latency() {
  local perf="$build/tools/nccl-moe-perf"
  for ranks in 2 8; do
    timeout 60 $run -np "$ranks" --timeout 50 -- "$perf" --low-latency --sms 16 --tokens 1 -n 100 -w 10 \
      --json "$out/latency_ll_$ranks.json" > "$out/latency_ll_$ranks.log" 2>&1
    echo "latency LL $ranks ranks T=1: exit $? after $(elapsed)"
    grep -E '^\[rank 0\] +[0-9]' "$out/latency_ll_$ranks.log" | sed 's/^\[rank 0\] //'
  done
  timeout 90 $run -np 8 --timeout 80 -- "$perf" -b 256 -e 1024 -f 4 -n 10 -w 3 --sms 16 -c 1 \
    --json "$out/latency_ht_8.json" > "$out/latency_ht_8.log" 2>&1
  echo "latency HT 8x16: exit $? after $(elapsed)"
  grep -E '^\[rank 0\] +[0-9]' "$out/latency_ht_8.log" | sed 's/^\[rank 0\] //'
}

part_lltrace() {
  for tokens in 1 128 256; do
    NCCL_MOE_LL_TRACE=1 timeout 60 $run -np 8 --timeout 50 -- "$build/tools/nccl-moe-perf" --low-latency --sms 16 \
      --tokens "$tokens" --ll-dispatch bf16 -n 50 -w 5 > "$out/lltrace_$tokens.log" 2>&1
    echo "lltrace T=$tokens: exit $? after $(elapsed)"
    grep -iE 'trace' "$out/lltrace_$tokens.log" | sort | head -24
  done
}

# ncu on one rank (no MPS: ncu replays each kernel, which cross-rank waits would deadlock with
# peers; one rank is its own only peer): the layout, dispatch and combine kernels at 256 and 4096
# tokens, and the LL kernels at T = 1 and 128, with the sections issue #14 asks for (bytes and
# achieved bandwidth per pass, occupancy, warp stalls). The kernels alone, without the virtual
# cluster's contention: what a kernel costs by itself.
part_ncu() {
  local ncu sections
  ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
  if [ -z "$ncu" ]; then echo "ncu: not found"; return; fi
  sections="--section SpeedOfLight --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy"
  sections="$sections --section WarpStateStats --section SchedulerStats"
  for tokens in 256 4096; do
    timeout 150 "$build/tools/nccl-moe-run" -np 1 --timeout 140 -- "$ncu" --target-processes all $sections \
      -k regex:'countFirst|dispatchKernel|combineKernel' -c 3 "$build/tools/nccl-moe-perf" -b "$tokens" -e "$tokens" \
      -n 1 -w 0 --sms 16 -c 0 > "$out/ncu_ht_$tokens.log" 2>&1
    echo "ncu HT $tokens tokens: exit $? after $(elapsed)"
    grep -E '^  [A-Za-z].*\(|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy' "$out/ncu_ht_$tokens.log" | head -24
  done
  timeout 150 "$build/tools/nccl-moe-run" -np 1 --timeout 140 -- "$ncu" --target-processes all $sections \
    -k regex:'lowLatency' -c 4 "$build/tools/nccl-moe-perf" --low-latency --sms 16 --tokens 1,128 --ll-dispatch bf16 \
    -n 1 -w 0 -c 0 > "$out/ncu_ll.log" 2>&1
  echo "ncu LL T=1,128: exit $? after $(elapsed)"
  grep -E '^  [A-Za-z].*\(|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy' "$out/ncu_ll.log" | head -24
}

part_peer() {
  if [ ! -f .peer/run_on_device.sh ]; then echo "peer: no .peer harness (see tools/perf/peer/harness_additions.patch)"; return; fi
  NCCL_MOE_BUILD="$build" OUT="$out/peer" FORCE_PREBUILT=1 BUDGET_S="${PEER_BUDGET_S:-530}" \
    CONFIGS="${PEER_CONFIGS:-8:16 4:24}" PERF_EXTRA="-c 1" \
    VARIANTS="bf16-staged fp8-staged bf16-zerocopy bf16-staged-w1024" bash .peer/run_on_device.sh > /dev/null 2>&1
  echo "peer: exit $? after $(elapsed)"
  cat "$out/peer/summary.md" 2>/dev/null
}

part_mega() {
  NCCL_MOE_BUILD="$build" bash python/tests/megatron/run_releases.sh "$out/megatron" > "$out/megatron.log" 2>&1
  echo "mega: exit $? after $(elapsed)"
  cat "$out/megatron/table.md" 2>/dev/null
}

for part in ${PARTS:-vc ll unit py san torchrun mega}; do
  "part_$part"
  # A run cut short (a lease that ends, an outer timeout) still leaves the parts done so far.
  if [ -n "${ARCHIVE:-}" ]; then tar czf "$ARCHIVE.partial" -C "$(dirname "$out")" "$(basename "$out")" && mv "$ARCHIVE.partial" "$ARCHIVE"; fi
done
