#!/usr/bin/env bash
# Copies what tests/gpu/run_gpu_checks.sh runs from a build directory into DEST (stripped of debug
# information), so that a build made on a machine without a GPU can travel to one that has a GPU.
# The test programs hold absolute paths of their build directory: on the GPU machine, make that
# path lead to DEST (e.g. `ln -sfn DEST build` in a checkout at the same place). Usage:
#
#   tests/gpu/pack_build.sh [BUILD_DIR] DEST     # default BUILD_DIR: build
#
# DEST/BUILT_FROM names the commit of the checkout (and files modified since) at packing time.
set -euo pipefail
if [ $# -eq 1 ]; then build=build; dest=$1; else build=$1; dest=$2; fi
programs=(
  src/libnccl_moe.so.0.1.0
  tools/nccl-moe-run tools/nccl-moe-perf tools/nccl-moe-demo
  tests/nccl-moe-rank-check tests/nccl-moe-ll-rank-check tests/nccl-moe-plugin-probe tests/nccl-moe-signal-probe tests/nccl-moe-copy-probe
  tests/gpu/nccl_moe_virtual_cluster_tests tests/gpu/nccl_moe_ll_cluster_tests tests/gpu/nccl_moe_gpu_tests
  tests/launcher/launcher_gpu_tests tests/launcher/nccl_allreduce_probe tests/launcher/bootstrap_probe
  tests/plugin/plugin_gpu_tests tests/plugin/plugin_abi_tests
  tests/plugin/libfake_tuner_v2.so tests/plugin/libfake_tuner_v5.so tests/plugin/libfake_tuner_v6.so
  tests/plugin/libfake_tuner_v7.so
  tests/tools/tool_cli_tests
)
rm -rf "$dest"
for file in "${programs[@]}"; do
  mkdir -p "$dest/$(dirname "$file")"
  strip --strip-debug -o "$dest/$file" "$build/$file"
done
# The library's links, as the build made them (the tuner plugin name is one of them).
for link in "$build"/src/*.so "$build"/src/*.so.0; do
  [ -L "$link" ] && cp -P "$link" "$dest/src/"
done
# What the build was made from: on the GPU machine only the working tree travels, so its `git log`
# may name another commit. run_gpu_checks.sh prints this file.
{
  git -C "$(dirname "$0")" log --oneline -1 2>/dev/null || echo "commit unknown"
  git -C "$(dirname "$0")" status --short --untracked-files=no 2>/dev/null | sed 's/^/  modified: /'
} > "$dest/BUILT_FROM"
du -sh "$dest" | cut -f1
