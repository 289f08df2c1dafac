#!/usr/bin/env bash
# Megatron-Core's own MoELayer on nccl_moe, for every pinned release, import order and rank count,
# on a one-GPU virtual cluster (or one GPU per rank on a multi-GPU node).
#
#   python/tests/megatron/run_releases.sh [OUT_DIR]
#
# Needs: a build of this checkout (build/src/libnccl_moe.so, build/tools/nccl-moe-run; or
# NCCL_MOE_BUILD=<dir>), PyTorch with CUDA, and the pinned wheels in NCCL_MOE_MEGATRON_WHEELS
# (python/tests/megatron/releases.py fetch puts them there; a machine without network gets the
# folder copied in). Each release is installed into its own folder with `pip install --target`.
#
# Knobs: RELEASES ("0.15.3 0.16.1 ..."), ORDERS ("before after"), RANKS ("2 4"), CASES (--only),
# BUDGET_S (stop starting new runs after this many seconds, default 560).
# Writes OUT_DIR/<release>-<order>-<ranks>.json and .log, and OUT_DIR/table.md (summary.py).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${1:-$PWD/megatron-out}
build=${NCCL_MOE_BUILD:-$root/build}
wheels=${NCCL_MOE_MEGATRON_WHEELS:-$HOME/.cache/nccl-moe/megatron-wheels}
releases=${RELEASES:-$(python3 "$here/releases.py" list | awk '{print $1}')}
orders=${ORDERS:-"before after"}
rank_counts=${RANKS:-"2 4"}
budget=${BUDGET_S:-560}
sites=${MEGATRON_SITES:-/tmp/nccl-moe-megatron-sites}
mkdir -p "$out" "$sites"
export NCCL_NVLS_ENABLE=0 NCCL_MOE_LIBRARY="$build/src/libnccl_moe.so" NCCL_MOE_TIMEOUT_MS=60000
# 0.15 compiles a small CUDA extension when megatron.core is imported: once, for this GPU.
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/nccl-moe-torch-extensions}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$(python3 -c \
  'import torch; print("%d.%d" % torch.cuda.get_device_capability())' 2>/dev/null || echo 9.0)}
start=$SECONDS
status=0
# Breadth first (every release at the first rank count and order before the next), so that a
# run cut by BUDGET_S still covers every release.
for release in $releases; do
  wheel=$(ls "$wheels"/megatron_core-"$release"-*.whl 2>/dev/null | head -n 1)
  if [ -z "$wheel" ]; then
    echo "run_releases: no wheel of megatron-core $release in $wheels" >&2
    status=1
    continue
  fi
  if [ ! -d "$sites/$release/megatron" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$sites/$release" "$wheel" || {
      echo "run_releases: pip could not install $wheel" >&2; status=1; }
  fi
done
for ranks in $rank_counts; do
  for order in $orders; do
    for release in $releases; do
      site="$sites/$release"
      [ -d "$site/megatron" ] || continue
      if (( SECONDS - start > budget )); then
        echo "run_releases: SKIPPED $release $order $ranks: past the ${budget}s budget" | tee -a "$out/skipped.txt"
        status=1
        continue
      fi
      tag="$release-$order-$ranks"
      echo "=== megatron-core $release, install $order import, $ranks ranks"
      PYTHONPATH="$site:$root/python" "$build/tools/nccl-moe-run" -np "$ranks" --mps --timeout 150 -- \
        python3 "$here/moe_layer_check.py" --order "$order" --json "$out/$tag.json" \
        ${CASES:+--only "$CASES"} > "$out/$tag.log" 2>&1
      rc=$?
      grep -E "^\[rank 0\] (\[(PASS|FAIL)\]|megatron )|Traceback|Error" "$out/$tag.log" | cut -c1-240 | head -n 30
      echo "=== $tag: exit $rc after $((SECONDS - start))s"
      (( rc == 0 )) || status=1
    done
  done
done
python3 "$here/summary.py" "$out" > "$out/table.md" && cat "$out/table.md"
exit $status
