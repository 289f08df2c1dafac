// What the one-GPU probes (signal_probe.cu, copy_probe.cu) share: failing loudly, integer flags, and
// every rank's buffer mapped into this process through CUDA IPC (the handles gathered over NCCL).
// Measurements to run by hand, not tests: a failure prints what failed and exits.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

#include "nccl_moe_bootstrap.h"

namespace probe {

inline const char* gProgram = "probe";  // the name failures are printed under

inline void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "%s: %s: %s\n", gProgram, what, cudaGetErrorString(e));
  std::exit(1);
}

inline void check(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return;
  std::fprintf(stderr, "%s: %s: %s\n", gProgram, what, ncclGetErrorString(r));
  std::exit(1);
}

inline int intFlag(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

// This rank's place in the job its launcher started, or a message and exit status 2.
inline nccl_moe::RankBootstrap bootstrapOrExit() {
  try {
    return nccl_moe::bootstrapRank();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", gProgram, e.what());
    std::exit(2);
  }
}

// Every rank's allocation `mine` (device memory from cudaMalloc) as this process addresses it:
// [r] is rank r's, [rank] is `mine`. Collective over `nccl`.
inline std::vector<void*> openPeerBuffers(void* mine, int ranks, int rank, ncclComm_t nccl, cudaStream_t stream) {
  cudaIpcMemHandle_t handle;
  check(cudaIpcGetMemHandle(&handle, mine), "cudaIpcGetMemHandle");
  char* handles = nullptr;
  check(cudaMalloc(&handles, sizeof(handle) * ranks), "cudaMalloc");
  check(cudaMemcpy(handles + sizeof(handle) * rank, &handle, sizeof(handle), cudaMemcpyHostToDevice), "cudaMemcpy");
  check(ncclAllGather(handles + sizeof(handle) * rank, handles, sizeof(handle), ncclChar, nccl, stream),
        "ncclAllGather");
  // A non-blocking stream: the legacy-stream copy below would not wait for the gather.
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  std::vector<cudaIpcMemHandle_t> all(ranks);
  check(cudaMemcpy(all.data(), handles, sizeof(handle) * ranks, cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaFree(handles), "cudaFree");
  std::vector<void*> buffers(ranks, nullptr);
  for (int r = 0; r < ranks; ++r) {
    if (r == rank) {
      buffers[r] = mine;
      continue;
    }
    check(cudaIpcOpenMemHandle(&buffers[r], all[r], cudaIpcMemLazyEnablePeerAccess), "cudaIpcOpenMemHandle");
  }
  return buffers;
}

inline void closePeerBuffers(const std::vector<void*>& buffers, int rank) {
  for (int r = 0; r < static_cast<int>(buffers.size()); ++r)
    if (r != rank) cudaIpcCloseMemHandle(buffers[r]);
}

}  // namespace probe
