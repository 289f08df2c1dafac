#!/usr/bin/env bash
# Installs the Debian packages nccl-moe needs to build and test, and checks that a CUDA toolkit
# with NCCL is present. Safe to run again: it installs only what is missing.
#
# Python tools go into a virtual environment of their own, build-tools/venv (NCCL_MOE_TOOLS_VENV
# moves it; Debian 12's python refuses system-wide pip installs): scikit-build-core, which builds
# the Python wheel (tests/wheel), and PyPI's cmake when the distribution's is older than
# CMakeLists.txt's cmake_minimum_required (tools/build.sh then uses that one).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

# clang, its sanitizer/libFuzzer runtimes and llvm-symbolizer (llvm-14): tests/sanitize, tests/fuzz.
# python3-venv: the tools venv above, and the fresh venv the wheel is installed into.
packages=(cmake g++ make pkg-config libhwloc-dev hwloc nlohmann-json3-dev libgtest-dev libgmock-dev
          libibverbs-dev clang libclang-rt-14-dev llvm-14 python3 python3-venv)
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

# version_at_least A B: A >= B, both dotted numbers.
version_at_least() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]; }

nccl_version=$(awk '/^#define NCCL_(MAJOR|MINOR|PATCH) /{printf "%s%s", sep, $3; sep="."}' "$nccl_header")
# The minimum is declared once, in src/misc/nccl_version.h (CMake and the run-time check read it too).
nccl_min=$(sed -n 's/^constexpr int kMinNccl\(Major\|Minor\) = \([0-9]*\);$/\2/p' "$repo/src/misc/nccl_version.h" | paste -sd.)
if ! version_at_least "$nccl_version" "$nccl_min"; then
  echo "setup: $nccl_header is NCCL $nccl_version; nccl-moe needs NCCL $nccl_min or newer." >&2
  echo "       Install a newer NCCL (libnccl-dev) or set NCCL_ROOT to its prefix." >&2
  exit 1
fi

# CMake: the distribution's when it is new enough, else PyPI's in the tools venv.
cmake_min=$(sed -n 's/^cmake_minimum_required(VERSION \([0-9.]*\)).*/\1/p' "$repo/CMakeLists.txt")
distro_cmake=$(cmake --version 2>/dev/null | sed -n '1s/^cmake version \([0-9.]*\).*/\1/p')
venv="${NCCL_MOE_TOOLS_VENV:-$repo/build-tools/venv}"
pip_wanted=("scikit-build-core>=0.10")
if [ -n "$distro_cmake" ] && version_at_least "$distro_cmake" "$cmake_min"; then
  cmake_text="cmake $distro_cmake"
else
  pip_wanted+=("cmake>=$cmake_min")
  cmake_text="cmake from PyPI in $venv/bin (the distribution's is ${distro_cmake:-missing}; $cmake_min needed)"
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating the Python tools venv $venv"
  python3 -m venv "$venv" || {
    echo "setup: python3 -m venv failed; install python3-venv (Debian/Ubuntu) and run again." >&2
    exit 1
  }
fi
# Installs only what is missing or too old (pip is not asked when everything is there already).
if ! "$venv/bin/python" - "${pip_wanted[@]}" <<'PYTHON'
import sys
from importlib import metadata
import re
for wanted in sys.argv[1:]:
    name, minimum = re.match(r"([A-Za-z0-9_-]+)>=([0-9.]+)$", wanted).groups()
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        sys.exit(1)
    as_tuple = lambda v: tuple(int(p) for p in re.findall(r"\d+", v)[:3])
    if as_tuple(have) < as_tuple(minimum):
        sys.exit(1)
PYTHON
then
  echo "setup: installing ${pip_wanted[*]} into $venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${pip_wanted[@]}"
fi

echo "setup: ok — $("$nvcc" --version | sed -n "s/.*release \([0-9.]*\).*/CUDA \1/p"), NCCL $nccl_version ($nccl_library), $cmake_text"
