#!/usr/bin/env bash
# Configures and builds nccl-moe (library, tools, tests, CUDA kernels) into ./build with every core.
# Extra arguments go to the CMake configure step, e.g. -DCMAKE_CUDA_ARCHITECTURES=90.
set -euo pipefail
cd "$(dirname "$0")/.."

cuda_home="${CUDA_HOME:-${CUDA_PATH:-/usr/local/cuda}}"
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x "$cuda_home/bin/nvcc" ]; then
  export CUDACXX="$cuda_home/bin/nvcc"
fi

cmake -S . -B build "$@"
cmake --build build --parallel "$(nproc)"
