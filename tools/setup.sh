#!/usr/bin/env bash
# Installs the Debian packages nccl-moe needs to build and test, and checks that a CUDA toolkit
# with NCCL is present. Safe to run again: it installs only what is missing.
set -euo pipefail

# clang, its sanitizer/libFuzzer runtimes and llvm-symbolizer (llvm-14): tests/sanitize, tests/fuzz.
packages=(cmake g++ make pkg-config libhwloc-dev hwloc nlohmann-json3-dev libgtest-dev libgmock-dev
          libibverbs-dev clang libclang-rt-14-dev llvm-14)
# Optional, with NCCL_MOE_SETUP_MPI=1: Open MPI, for the rank bootstrap's MPI path
# (tools/build.sh -DNCCL_MOE_WITH_MPI=ON) and the mpirun case of the bootstrap tests, which skips
# without it. Nothing else needs MPI (docs/launching.md).
if [ "${NCCL_MOE_SETUP_MPI:-0}" = 1 ]; then
  packages+=(libopenmpi-dev openmpi-bin)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    apt_get=(apt-get)
  elif command -v sudo >/dev/null; then
    apt_get=(sudo apt-get)
  else
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${apt_get[@]}" update -qq
  "${apt_get[@]}" install -y -qq --no-install-recommends "${missing[@]}"
fi

cuda_home="${CUDA_HOME:-${CUDA_PATH:-/usr/local/cuda}}"
if [ -x "$cuda_home/bin/nvcc" ]; then
  nvcc="$cuda_home/bin/nvcc"
elif command -v nvcc >/dev/null; then
  nvcc="$(command -v nvcc)"
  cuda_home="$(dirname "$(dirname "$nvcc")")"
else
  echo "setup: no CUDA toolkit found (looked for nvcc in $cuda_home/bin and on PATH)." >&2
  echo "       Install the CUDA toolkit (12.x or 13.x) and set CUDA_HOME to its prefix." >&2
  exit 1
fi

nccl_header=""
for dir in ${NCCL_ROOT:+"$NCCL_ROOT/include"} ${NCCL_HOME:+"$NCCL_HOME/include"} "$cuda_home/include" /usr/include /usr/local/include; do
  if [ -f "$dir/nccl.h" ]; then nccl_header="$dir/nccl.h"; break; fi
done
nccl_library=""
for dir in ${NCCL_ROOT:+"$NCCL_ROOT/lib"} ${NCCL_HOME:+"$NCCL_HOME/lib"} "$cuda_home/lib64" "$cuda_home/lib" /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/lib; do
  if [ -e "$dir/libnccl.so.2" ]; then nccl_library="$dir/libnccl.so.2"; break; fi
done
if [ -z "$nccl_header" ] || [ -z "$nccl_library" ]; then
  echo "setup: NCCL not found (header: ${nccl_header:-missing}, libnccl.so.2: ${nccl_library:-missing})." >&2
  echo "       Install NCCL (e.g. Debian/NVIDIA package libnccl-dev) or set NCCL_ROOT to its prefix." >&2
  exit 1
fi

nccl_version=$(awk '/^#define NCCL_(MAJOR|MINOR|PATCH) /{printf "%s%s", sep, $3; sep="."}' "$nccl_header")
echo "setup: ok — $("$nvcc" --version | sed -n "s/.*release \([0-9.]*\).*/CUDA \1/p"), NCCL $nccl_version ($nccl_library)"
