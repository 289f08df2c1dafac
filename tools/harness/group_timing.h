// Numbers agreed over the ranks of an NCCL communicator (the slowest rank's time, a sum of wrong
// elements) and the timing of collective calls: all ranks start together, CUDA events on the
// stream measure the calls, the slowest rank's time counts.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdint>
#include <functional>

#include "tools/harness/device.h"

namespace nccl_moe::harness {

class GroupReduce {
 public:
  GroupReduce(ncclComm_t comm, cudaStream_t stream);
  GroupReduce(const GroupReduce&) = delete;
  GroupReduce& operator=(const GroupReduce&) = delete;

  double max(double value);
  double sum(double value);
  int64_t sum(int64_t value);
  // Returns once every rank has reached it (and this rank's earlier work on the stream is done).
  void barrier();

 private:
  void reduce(void* value, ncclDataType_t type, ncclRedOp_t op);

  ncclComm_t comm_;
  cudaStream_t stream_;
  DeviceBuffer scratch_{sizeof(double)};  // one value on the device
};

class GroupTimer {
 public:
  GroupTimer(GroupReduce& group, cudaStream_t stream);
  ~GroupTimer();
  GroupTimer(const GroupTimer&) = delete;
  GroupTimer& operator=(const GroupTimer&) = delete;

  // Runs `body` `warmup` times, then, after a barrier, `iters` times between two events on the
  // stream: the slowest rank's time per iteration in µs (mean over the iterations).
  double time(int warmup, int iters, const std::function<void()>& body);

 private:
  GroupReduce& group_;
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

}  // namespace nccl_moe::harness
