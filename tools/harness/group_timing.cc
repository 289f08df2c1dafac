#include "tools/harness/group_timing.h"

#include "tools/harness/device.h"

namespace nccl_moe::harness {

GroupReduce::GroupReduce(ncclComm_t comm, cudaStream_t stream) : comm_(comm), stream_(stream) {}

// Every copy on the stream: the all-reduce runs there (a non-blocking stream), and a cudaMemcpy on
// the legacy stream would not wait for it.
void GroupReduce::reduce(void* value, ncclDataType_t type, ncclRedOp_t op) {
  checkCuda(cudaMemcpyAsync(scratch_.get(), value, 8, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
  checkNccl(ncclAllReduce(scratch_.get(), scratch_.get(), 1, type, op, comm_, stream_), "ncclAllReduce");
  checkCuda(cudaMemcpyAsync(value, scratch_.get(), 8, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync");
  checkCuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

double GroupReduce::max(double value) {
  reduce(&value, ncclFloat64, ncclMax);
  return value;
}

double GroupReduce::sum(double value) {
  reduce(&value, ncclFloat64, ncclSum);
  return value;
}

int64_t GroupReduce::sum(int64_t value) {
  reduce(&value, ncclInt64, ncclSum);
  return value;
}

void GroupReduce::barrier() {
  checkNccl(ncclAllReduce(scratch_.get(), scratch_.get(), 1, ncclFloat64, ncclSum, comm_, stream_), "ncclAllReduce");
  checkCuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

GroupTimer::GroupTimer(GroupReduce& group, cudaStream_t stream) : group_(group), stream_(stream) {
  checkCuda(cudaEventCreate(&start_), "cudaEventCreate");
  checkCuda(cudaEventCreate(&stop_), "cudaEventCreate");
}

GroupTimer::~GroupTimer() {
  cudaEventDestroy(start_);
  cudaEventDestroy(stop_);
}

double GroupTimer::time(int warmup, int iters, const std::function<void()>& body) {
  for (int i = 0; i < warmup; ++i) body();
  group_.barrier();
  checkCuda(cudaEventRecord(start_, stream_), "cudaEventRecord");
  for (int i = 0; i < iters; ++i) body();
  checkCuda(cudaEventRecord(stop_, stream_), "cudaEventRecord");
  checkCuda(cudaEventSynchronize(stop_), "cudaEventSynchronize");
  float ms = 0;
  checkCuda(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
  return group_.max(static_cast<double>(ms) * 1000.0 / iters);
}

}  // namespace nccl_moe::harness
