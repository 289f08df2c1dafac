#!/usr/bin/env bash
# Configures and builds nccl-moe (library, tools, tests, CUDA kernels) into ./build with every core.
# Extra arguments go to the CMake configure step, e.g. -DCMAKE_CUDA_ARCHITECTURES=90-real (the
# default is every architecture from Ampere on that the CUDA found supports: README).
set -euo pipefail
cd "$(dirname "$0")/.."

cuda_home="${CUDA_HOME:-${CUDA_PATH:-/usr/local/cuda}}"
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x "$cuda_home/bin/nvcc" ]; then
  export CUDACXX="$cuda_home/bin/nvcc"
fi

# PyPI's cmake, where tools/setup.sh put one (the distribution's was too old), else the PATH's.
cmake=cmake
venv="${NCCL_MOE_TOOLS_VENV:-$PWD/build-tools/venv}"
if [ -x "$venv/bin/cmake" ]; then cmake="$venv/bin/cmake"; fi

"$cmake" -S . -B build "$@"
"$cmake" --build build --parallel "$(nproc)"
