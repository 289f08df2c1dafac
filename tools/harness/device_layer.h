// One rank's MoE layer through the public API on device buffers: ncclMoeLayoutCreate and
// ncclMoeHandleGetCounts, ncclMoeDispatch, ncclMoeCombine, and host copies of what they wrote for
// the comparison with the CPU reference (mismatch.h). nccl-moe-perf times these calls;
// nccl-moe-demo runs them once, checks them, then times them. Top-k routing only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "nccl_moe.h"
#include "tools/harness/device.h"
#include "tools/harness/mismatch.h"

namespace nccl_moe::harness {

struct LayerShape {
  int hidden = 0;
  int topk = 0;                          // K of the routings
  int localExperts = 0;                  // L: experts / ranks
  ElementType rowType = ElementType::kBf16;  // the communicator's dataType (bf16 or fp32)
  bool fp8 = false;                      // the communicator's fp8Dispatch
  LayoutOptions layout;                  // per-rank or expert-major with padding; no budget
  bool routingOutputs = false;           // dispatch also writes recvProbs (and recvTopkIdx, per-rank)
};

class DeviceLayer {
 public:
  DeviceLayer(ncclMoeComm_t comm, cudaStream_t stream, const LayerShape& shape);
  ~DeviceLayer();  // destroys the handle
  DeviceLayer(const DeviceLayer&) = delete;
  DeviceLayer& operator=(const DeviceLayer&) = delete;

  // This rank's top-k routing and tokens ([T, H] of the row type), copied to the device.
  void setInputs(const RankRouting& routing, const HostRows& x);
  // Collective: ncclMoeLayoutCreate (the handle reused after the first call) and
  // ncclMoeHandleGetCounts (the one host sync). Sizes the receive buffers for the rows counted.
  void createLayout();
  int64_t rows() const { return rows_; }
  const std::vector<int64_t>& tokensPerExpert() const { return tokensPerExpert_; }
  bool overflow() const { return overflow_ != 0; }

  // Collective, enqueued on the stream.
  void dispatch();
  void combine();

  // Combine's input, the expert outputs: [rows(), H] of the row type; zeros.
  void setExpertOutput(const HostRows& y);
  void zeroExpertOutput();

  // Host copies of the outputs, once the stream's work so far has completed.
  DispatchResult downloadDispatch() const;
  HostRows downloadCombined() const;

  // The device copies of the inputs and the combine output, and where the calls read their inputs
  // (nccl-moe-perf points them at the communicator's input areas for --zero-copy).
  const void* tokens() const { return x_.get(); }
  size_t tokenBytes() const { return static_cast<size_t>(tokens_) * rowBytes(); }
  const void* expertOutput() const { return y_.get(); }
  size_t expertOutputBytes() const { return static_cast<size_t>(rows_) * rowBytes(); }
  void* combined() const { return out_.get(); }
  void setDispatchInput(const void* x) { dispatch_.x = x; }
  void setCombineInput(const void* x) { combine_.x = x; }

  // Bytes of one received row (E4M3 codes with FP8, scales apart) and of one token row.
  size_t recvRowBytes() const;
  size_t rowBytes() const;

 private:
  int probsPerRow() const;
  void allocateOutputs();

  ncclMoeComm_t comm_;
  cudaStream_t stream_;
  LayerShape shape_;
  int tokens_ = 0;
  DeviceBuffer x_, idx_, probs_;
  ncclMoeRouting_t routing_ = NCCL_MOE_ROUTING_INITIALIZER;
  ncclMoeLayoutOptions_t options_ = NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER;
  ncclMoeHandle_t handle_ = nullptr;
  int64_t rows_ = 0;
  int64_t capacity_ = -1;  // rows the receive buffers hold
  std::vector<int64_t> tokensPerExpert_;
  int32_t overflow_ = 0;
  DeviceBuffer recvX_, recvScales_, recvIdx_, recvProbs_, y_, out_;
  ncclMoeDispatchArgs_t dispatch_ = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
  ncclMoeCombineArgs_t combine_ = NCCL_MOE_COMBINE_ARGS_INITIALIZER;
};

}  // namespace nccl_moe::harness
