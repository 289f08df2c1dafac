// One MoE layer through the public nccl-moe API: layout, dispatch, an identity "expert", combine,
// and a check of the result. Built against the installed package (see CMakeLists.txt).
//
// One rank:    ./moe_layer
// N ranks:     nccl-moe-run -np N ./moe_layer, mpirun -np N ./moe_layer, srun -n N ./moe_layer,
//              torchrun --nproc-per-node N --no-python ./moe_layer (the rank bootstrap,
//              nccl_moe_bootstrap.h, reads whichever launcher started it; see docs/launching.md)
// Exit code 0 when every token came back as x * (number of ranks it was sent to).
#include <cuda_runtime.h>
#include <nccl.h>
#include <nccl_moe.h>
#include <nccl_moe_bootstrap.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {

constexpr int kExpertsPerRank = 4;
constexpr int kHidden = 512;
constexpr int kTokens = 128;
constexpr int kTopk = 2;

bool check(cudaError_t result, const char* what) {
  if (result != cudaSuccess) std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(result));
  return result == cudaSuccess;
}

bool check(ncclResult_t result, const char* what, ncclMoeComm_t moe = nullptr) {
  if (result != ncclSuccess) {
    std::fprintf(stderr, "%s: %s (%s)\n", what, ncclMoeGetErrorString(result), ncclMoeGetLastError(moe));
  }
  return result == ncclSuccess;
}

// Device buffer freed at scope exit.
template <class T>
struct DeviceArray {
  T* data = nullptr;
  explicit DeviceArray(size_t count) { check(cudaMalloc(&data, (count ? count : 1) * sizeof(T)), "cudaMalloc"); }
  ~DeviceArray() { cudaFree(data); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
};

int runLayer(const nccl_moe::RankLayout& me, ncclComm_t nccl) {
  const int experts = kExpertsPerRank * me.size;
  ncclMoeConfig_t config = NCCL_MOE_CONFIG_INITIALIZER;
  config.numExperts = experts;
  config.hiddenSize = kHidden;
  config.maxTokensPerRank = kTokens;
  config.maxTopk = kTopk;
  config.dataType = ncclFloat32;
  ncclMoeComm_t moe = nullptr;
  if (!check(ncclMoeCommCreate(nccl, &config, &moe), "ncclMoeCommCreate")) return 1;

  // Tokens: row t holds t + 1 + rank/1000 everywhere; each picks kTopk distinct experts.
  std::mt19937 random(1234 + me.rank);
  std::vector<float> x(size_t{kTokens} * kHidden);
  std::vector<int64_t> ids(size_t{kTokens} * kTopk);
  std::vector<float> probs(ids.size(), 1.0f / kTopk);
  std::vector<int> ranksReached(kTokens);
  for (int t = 0; t < kTokens; ++t) {
    for (int h = 0; h < kHidden; ++h) x[static_cast<size_t>(t) * kHidden + h] = t + 1 + me.rank / 1000.0f;
    const int first = static_cast<int>(random() % experts);
    const int second = (first + 1 + static_cast<int>(random() % (experts - 1))) % experts;
    ids[static_cast<size_t>(t) * kTopk] = first;
    ids[static_cast<size_t>(t) * kTopk + 1] = second;
    ranksReached[t] = first / kExpertsPerRank == second / kExpertsPerRank ? 1 : 2;
  }
  DeviceArray<float> xDev(x.size()), probsDev(probs.size()), outDev(x.size());
  DeviceArray<int64_t> idsDev(ids.size());
  bool ok = check(cudaMemcpy(xDev.data, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice), "copy x") &&
            check(cudaMemcpy(idsDev.data, ids.data(), ids.size() * sizeof(int64_t), cudaMemcpyHostToDevice), "copy ids") &&
            check(cudaMemcpy(probsDev.data, probs.data(), probs.size() * sizeof(float), cudaMemcpyHostToDevice), "copy probs");

  cudaStream_t stream = nullptr;
  ok = ok && check(cudaStreamCreate(&stream), "cudaStreamCreate");
  ncclMoeRouting_t routing = NCCL_MOE_ROUTING_INITIALIZER;
  routing.numTokens = kTokens;
  routing.topk = kTopk;
  routing.topkIdx = idsDev.data;
  routing.topkProbs = probsDev.data;
  ncclMoeLayoutOptions_t layout = NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER;  // per-rank rows
  ncclMoeHandle_t handle = nullptr;
  int64_t rows = 0;
  std::vector<int64_t> tokensPerExpert(kExpertsPerRank);
  ok = ok && check(ncclMoeLayoutCreate(moe, &routing, &layout, &handle, stream), "ncclMoeLayoutCreate", moe) &&
       check(ncclMoeHandleGetCounts(handle, &rows, tokensPerExpert.data(), nullptr), "ncclMoeHandleGetCounts", moe);

  DeviceArray<float> recvX(size_t(rows) * kHidden), recvProbs(size_t(rows) * kTopk), expertOut(size_t(rows) * kHidden);
  DeviceArray<int64_t> recvIds(size_t(rows) * kTopk);
  ncclMoeDispatchArgs_t dispatch = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
  dispatch.x = xDev.data;
  dispatch.recvRows = rows;
  dispatch.recvX = recvX.data;
  dispatch.recvTopkIdx = recvIds.data;
  dispatch.recvProbs = recvProbs.data;
  ok = ok && check(ncclMoeDispatch(moe, handle, &dispatch, stream), "ncclMoeDispatch", moe);
  // The "expert": identity.
  ok = ok && check(cudaMemcpyAsync(expertOut.data, recvX.data, size_t(rows) * kHidden * sizeof(float),
                                   cudaMemcpyDeviceToDevice, stream), "expert copy");
  ncclMoeCombineArgs_t combine = NCCL_MOE_COMBINE_ARGS_INITIALIZER;
  combine.x = expertOut.data;
  combine.rows = rows;
  combine.out = outDev.data;
  ok = ok && check(ncclMoeCombine(moe, handle, &combine, stream), "ncclMoeCombine", moe) &&
       check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");

  std::vector<float> out(x.size());
  ok = ok && check(cudaMemcpy(out.data(), outDev.data, out.size() * sizeof(float), cudaMemcpyDeviceToHost), "copy out");
  int wrong = 0;
  for (size_t i = 0; ok && i < out.size(); ++i) {
    const float expected = x[i] * ranksReached[i / kHidden];
    if (std::fabs(out[i] - expected) > 1e-5f * std::fabs(expected)) ++wrong;
  }
  if (ok) {
    std::printf("rank %d of %d: %lld rows received, tokens per local expert", me.rank, me.size,
                static_cast<long long>(rows));
    for (int64_t count : tokensPerExpert) std::printf(" %lld", static_cast<long long>(count));
    std::printf("; combine %s (%d wrong values)\n", wrong == 0 ? "ok" : "WRONG", wrong);
  }
  if (handle != nullptr) ncclMoeHandleDestroy(handle);
  ncclMoeCommDestroy(moe);
  if (stream != nullptr) cudaStreamDestroy(stream);
  return ok && wrong == 0 ? 0 : 1;
}

}  // namespace

int main() {
  nccl_moe::RankBootstrap me;
  try {
    me = nccl_moe::bootstrapRank();  // rank, size, GPU and the job's unique id, from any launcher
  } catch (const nccl_moe::BootstrapError& error) {
    std::fprintf(stderr, "moe_layer: %s\n", error.what());
    return 2;
  }
  ncclComm_t nccl = nullptr;
  if (!check(ncclCommInitRank(&nccl, me.layout.size, me.uniqueId, me.layout.rank), "ncclCommInitRank")) return 1;
  const int status = runLayer(me.layout, nccl);
  ncclCommDestroy(nccl);
  return status;
}
