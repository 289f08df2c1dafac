#!/usr/bin/env bash
# Builds the CPU unit tests of the topology, plan and config/check code with ASan+UBSan
# (tests/sanitize, clang by default) into build/sanitize and runs them. Fails on a failing test
# or on any sanitizer report, also one from a child process (the CLI tests run nccl-moe-topo).
#   tests/sanitize/run.sh                                   build and run everything
#   tests/sanitize/run.sh --gtest_filter='TopoHostile*'     arguments go to every test binary
#   SANITIZE_CXX=g++ tests/sanitize/run.sh                  with gcc's sanitizers instead
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="${SANITIZE_BUILD_DIR:-$repo/build/sanitize}"

cmake -S "$repo/tests/sanitize" -B "$build" -DCMAKE_CXX_COMPILER="${SANITIZE_CXX:-clang++}" >/dev/null
cmake --build "$build" --parallel "$(nproc)"

if ! command -v llvm-symbolizer >/dev/null && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
# Every report goes to a file under reports/ as well as failing its process: a child whose
# crash a test might read as an ordinary non-zero exit still leaves its report behind.
reports="$build/reports"
rm -rf "$reports" && mkdir -p "$reports"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:log_path=$reports/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:abort_on_error=1:log_path=$reports/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# Where libhwloc-plugins is installed, hwloc's PCI plugin loads libpciaccess, which leaks about
# 1 KB at exit from a module hwloc has unloaded by then: LeakSanitizer can neither attribute nor
# suppress it. The sanitized probe therefore runs without that plugin (as on a machine without
# libhwloc-plugins, like CI); the probe's own code is the same either way.
export HWLOC_PLUGINS_BLACKLIST="hwloc_pci${HWLOC_PLUGINS_BLACKLIST:+,$HWLOC_PLUGINS_BLACKLIST}"
unset NCCL_MOE_DEBUG  # test_env checks the default level

status=0
for test in sanitized_topology_tests sanitized_topo_cli_tests sanitized_unit_tests; do
  start=$SECONDS
  if "$build/$test" --gtest_brief=1 "$@" >"$build/$test.log" 2>&1; then
    echo "sanitize: $test ok in $((SECONDS - start)) s ($(grep -o '[0-9]* tests\? from' "$build/$test.log" | tail -1 | cut -d' ' -f1) tests)"
  else
    status=1
    echo "sanitize: $test FAILED; the end of $build/$test.log:" >&2
    tail -n 60 "$build/$test.log" >&2
  fi
done
if compgen -G "$reports/*" >/dev/null; then
  status=1
  for report in "$reports"/*; do
    echo "sanitize: report $report:" >&2
    cat "$report" >&2
  done
fi
exit "$status"
