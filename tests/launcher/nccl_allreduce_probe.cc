// Rank program for the GPU launcher test: forms an NCCL communicator from what nccl-moe-run
// passed (read by the rank bootstrap) and checks one all-reduce. Exit 0 only when every element
// is right.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstdio>
#include <vector>

#include "nccl_moe_bootstrap.h"

namespace {

constexpr size_t kElements = 1 << 16;

bool cudaOk(cudaError_t result, const char* what) {
  if (result == cudaSuccess) return true;
  std::printf("%s failed: %s\n", what, cudaGetErrorString(result));
  return false;
}

bool ncclOk(ncclResult_t result, const char* what) {
  if (result == ncclSuccess) return true;
  std::printf("%s failed: %s\n", what, ncclGetErrorString(result));
  return false;
}

int allReduceOnce(const nccl_moe::RankBootstrap& me) {
  const nccl_moe::RankLayout& env = me.layout;
  ncclComm_t comm = nullptr;
  if (!ncclOk(ncclCommInitRank(&comm, env.size, me.uniqueId, env.rank), "ncclCommInitRank")) {
    return 1;
  }
  float* buffer = nullptr;
  std::vector<float> host(kElements, static_cast<float>(env.rank + 1));
  bool ok = cudaOk(cudaMalloc(&buffer, kElements * sizeof(float)), "cudaMalloc") &&
            cudaOk(cudaMemcpy(buffer, host.data(), kElements * sizeof(float), cudaMemcpyHostToDevice),
                   "cudaMemcpy to device") &&
            ncclOk(ncclAllReduce(buffer, buffer, kElements, ncclFloat, ncclSum, comm, nullptr),
                   "ncclAllReduce") &&
            cudaOk(cudaMemcpy(host.data(), buffer, kElements * sizeof(float), cudaMemcpyDeviceToHost),
                   "cudaMemcpy to host");
  const float expected = static_cast<float>(env.size) * static_cast<float>(env.size + 1) / 2;
  size_t wrong = 0;
  for (float value : host) wrong += value != expected ? 1 : 0;
  if (ok && wrong != 0) std::printf("%zu of %zu elements differ from %g\n", wrong, kElements, expected);
  ok = ok && wrong == 0;
  cudaFree(buffer);
  ncclCommDestroy(comm);
  if (ok) std::printf("allreduce ok: rank %d of %d, domain %d\n", env.rank, env.size, env.rank / env.localSize);
  return ok ? 0 : 1;
}

}  // namespace

int main() {
  try {
    return allReduceOnce(nccl_moe::bootstrapRank());
  } catch (const nccl_moe::BootstrapError& error) {
    std::printf("%s\n", error.what());
    return 2;
  }
}
