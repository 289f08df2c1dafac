// nccl-moe-plugin-probe: an ordinary NCCL program (it does not link nccl-moe) for checking the
// tuner plugin on a GPU. Started by nccl-moe-run, each rank forms an NCCL communicator and runs
// all-reduces and all-gathers of 4 KiB to 16 MiB per rank, checking every result. Run it with
// NCCL_TUNER_PLUGIN=<libnccl-tuner-moe.so> and NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,TUNING,ENV:
// NCCL's own log then shows the plugin loaded ("TUNER/Plugin: Using nccl-moe"), nccl-moe's init
// summary, and per collective "channel{Lo..Hi}" within NCCL_MOE_NCCL_MAX_CHANNELS.
// Exit code 0 when every collective was right.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstdio>
#include <vector>

#include "nccl_moe_bootstrap.h"

namespace {

bool cudaOk(cudaError_t result, const char* what) {
  if (result != cudaSuccess) std::printf("%s failed: %s\n", what, cudaGetErrorString(result));
  return result == cudaSuccess;
}

bool ncclOk(ncclResult_t result, const char* what) {
  if (result != ncclSuccess) std::printf("%s failed: %s\n", what, ncclGetErrorString(result));
  return result == ncclSuccess;
}

// All-reduce (sum of rank+1 over ranks) and all-gather (rank r's block holds r) of `count` floats.
bool checkCollectives(const nccl_moe::RankLayout& env, ncclComm_t comm, size_t count,
                      cudaStream_t stream) {
  const size_t gathered = count * static_cast<size_t>(env.size);
  float* reduced = nullptr;
  float* gather = nullptr;
  std::vector<float> host(gathered, static_cast<float>(env.rank + 1));
  bool ok = cudaOk(cudaMalloc(&reduced, count * sizeof(float)), "cudaMalloc") &&
            cudaOk(cudaMalloc(&gather, gathered * sizeof(float)), "cudaMalloc") &&
            cudaOk(cudaMemcpy(reduced, host.data(), count * sizeof(float), cudaMemcpyHostToDevice), "copy") &&
            ncclOk(ncclAllReduce(reduced, reduced, count, ncclFloat, ncclSum, comm, stream), "ncclAllReduce") &&
            ncclOk(ncclAllGather(reduced, gather, count, ncclFloat, comm, stream), "ncclAllGather") &&
            cudaOk(cudaStreamSynchronize(stream), "cudaStreamSynchronize") &&
            cudaOk(cudaMemcpy(host.data(), gather, gathered * sizeof(float), cudaMemcpyDeviceToHost), "copy back");
  const float expected = static_cast<float>(env.size) * static_cast<float>(env.size + 1) / 2;
  size_t wrong = 0;
  for (size_t i = 0; ok && i < gathered; ++i) wrong += host[i] != expected ? 1 : 0;
  if (ok && wrong != 0) std::printf("%zu floats: %zu values differ from %g\n", count, wrong, expected);
  cudaFree(reduced);
  cudaFree(gather);
  return ok && wrong == 0;
}

int run(const nccl_moe::RankBootstrap& me) {
  const nccl_moe::RankLayout& env = me.layout;
  ncclComm_t comm = nullptr;
  if (!ncclOk(ncclCommInitRank(&comm, env.size, me.uniqueId, env.rank), "ncclCommInitRank")) return 1;
  cudaStream_t stream = nullptr;
  bool ok = cudaOk(cudaStreamCreate(&stream), "cudaStreamCreate");
  for (size_t count = 1024; ok && count <= (size_t{16} << 20); count *= 16) {
    ok = checkCollectives(env, comm, count, stream);
  }
  if (stream != nullptr) cudaStreamDestroy(stream);
  ncclCommDestroy(comm);
  if (ok) std::printf("plugin probe ok: rank %d of %d\n", env.rank, env.size);
  return ok ? 0 : 1;
}

}  // namespace

int main() {
  try {
    return run(nccl_moe::bootstrapRank());
  } catch (const nccl_moe::BootstrapError& error) {
    std::printf("%s\n", error.what());
    return 2;
  }
}
