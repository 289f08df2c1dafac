#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang, ASan+UBSan) into build/fuzz and runs each for
# FUZZ_SECONDS (default 20) from seeds the library writes plus tests/fuzz/seeds and the topology
# fixtures. Fails on any crash, sanitizer report, leak, timeout or out-of-memory, and prints the
# input that caused it. The corpus grows in build/fuzz/corpus across runs.
#   tests/fuzz/run.sh                                         every target, 20 s each (CI)
#   FUZZ_SECONDS=3600 FUZZ_JOBS=8 tests/fuzz/run.sh nccl_xml  one target, an hour, 8 processes
#   build/fuzz/fuzz_nccl_xml CRASH_FILE                       replay one input
# Runs past 5 minutes use libFuzzer's fork mode (FUZZ_JOBS processes, default 1): each job is a
# fresh process, so state a process keeps for good (envInt's warned-once values) cannot add up
# to a false out-of-memory failure.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="${FUZZ_BUILD_DIR:-$repo/build/fuzz}"
seconds="${FUZZ_SECONDS:-20}"
jobs="${FUZZ_JOBS:-$((seconds > 300 ? 1 : 0))}"
fork=()
((jobs > 0)) && fork=(-fork="$jobs")
if (($#)); then targets=("$@"); else targets=(cluster_json nccl_xml routing_trace config); fi

cmake -S "$repo/tests/fuzz" -B "$build" -DCMAKE_CXX_COMPILER="${FUZZ_CXX:-clang++}" >/dev/null
cmake --build "$build" --parallel "$(nproc)"

# Sanitizer reports name functions and lines only with a symbolizer; Debian puts it in llvm-14.
if ! command -v llvm-symbolizer >/dev/null && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

rm -rf "$build/seeds" && "$build/make_seeds" "$build/seeds"
mkdir -p "$build/crashes" "$build/logs"
failed=()
for target in "${targets[@]}"; do
  [ -x "$build/fuzz_$target" ] || { echo "fuzz: unknown target '$target'" >&2; exit 2; }
  corpus=("$build/corpus/$target" "$build/seeds/$target")
  [ -d "$repo/tests/fuzz/seeds/$target" ] && corpus+=("$repo/tests/fuzz/seeds/$target")
  [ "$target" = nccl_xml ] && corpus+=("$repo/tests/topology/fixtures")  # hwloc XML: the generic parser
  mkdir -p "${corpus[0]}"
  log="$build/logs/$target.log"
  start=$SECONDS
  if "$build/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 "${fork[@]}" \
       -print_final_stats=1 -artifact_prefix="$build/crashes/$target-" "${corpus[@]}" >"$log" 2>&1; then
    # Runs: libFuzzer's final stats, or in fork mode the last status line (#runs: ...).
    runs=$(grep -o 'number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' ||
           grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    echo "fuzz: $target ok in $((SECONDS - start)) s: $runs runs, $(grep -o 'cov: [0-9]*' "$log" | tail -1)," \
      "corpus $(find "${corpus[0]}" -type f | wc -l) inputs"
  else
    failed+=("$target")
    echo "fuzz: $target FAILED after $((SECONDS - start)) s; the end of $log:" >&2
    grep -v -E '^#[0-9]+\s+(NEW|REDUCE|pulse|INITED|RELOAD)' "$log" | tail -n 60 >&2
    grep -o 'Test unit written to .*' "$log" | sed "s|Test unit written to \(.*\)|fuzz: input: \1  (replay: $build/fuzz_$target \1)|" >&2
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
