#include "tools/harness/device_layer.h"

#include <stdexcept>
#include <string>

namespace nccl_moe::harness {

DeviceLayer::DeviceLayer(ncclMoeComm_t comm, cudaStream_t stream, const LayerShape& shape)
    : comm_(comm), stream_(stream), shape_(shape) {
  options_.layout = shape.layout.layout == OutputLayout::kExpertMajor ? NCCL_MOE_LAYOUT_EXPERT_MAJOR
                                                                        : NCCL_MOE_LAYOUT_PER_RANK;
  options_.padMultiple = shape.layout.padMultiple;
  options_.rowBudget = -1;
}

DeviceLayer::~DeviceLayer() {
  if (handle_ != nullptr) ncclMoeHandleDestroy(handle_);
}

size_t DeviceLayer::rowBytes() const { return static_cast<size_t>(shape_.hidden) * elementBytes(shape_.rowType); }

size_t DeviceLayer::recvRowBytes() const { return shape_.fp8 ? static_cast<size_t>(shape_.hidden) : rowBytes(); }

int DeviceLayer::probsPerRow() const { return shape_.layout.layout == OutputLayout::kExpertMajor ? 1 : shape_.topk; }

void DeviceLayer::setInputs(const RankRouting& routing, const HostRows& x) {
  if (routing.format != RoutingFormat::kTopk || routing.topk != shape_.topk)
    throw std::logic_error("DeviceLayer: a top-k routing of K = " + std::to_string(shape_.topk) + " is expected");
  if (x.rows() != routing.numTokens || x.cols() != shape_.hidden || x.type() != shape_.rowType)
    throw std::logic_error("DeviceLayer: the tokens do not match the routing and the shape");
  tokens_ = routing.numTokens;
  x_ = DeviceBuffer(x.bytes().size());
  x_.upload(x.bytes(), stream_);
  idx_ = DeviceBuffer(routing.topkIdx.size() * sizeof(int64_t));
  idx_.upload(routing.topkIdx, stream_);
  probs_ = DeviceBuffer(routing.topkProbs.size() * sizeof(float));
  probs_.upload(routing.topkProbs, stream_);
  out_ = DeviceBuffer(tokenBytes());
  routing_.format = NCCL_MOE_ROUTING_TOPK;
  routing_.numTokens = tokens_;
  routing_.topk = shape_.topk;
  routing_.topkIdx = idx_.get<int64_t>();
  routing_.topkProbs = routing.hasProbs() ? probs_.get<float>() : nullptr;
  dispatch_.x = x_.get();
  combine_.out = out_.get();
}

void DeviceLayer::createLayout() {
  checkMoe(ncclMoeLayoutCreate(comm_, &routing_, &options_, &handle_, stream_), "ncclMoeLayoutCreate", comm_);
  tokensPerExpert_.assign(static_cast<size_t>(shape_.localExperts), 0);
  checkMoe(ncclMoeHandleGetCounts(handle_, &rows_, tokensPerExpert_.data(), &overflow_), "ncclMoeHandleGetCounts",
           comm_);
  if (rows_ > capacity_) allocateOutputs();
}

void DeviceLayer::allocateOutputs() {
  capacity_ = rows_;
  const size_t rows = static_cast<size_t>(capacity_);
  const bool perRank = shape_.layout.layout != OutputLayout::kExpertMajor;
  recvX_ = DeviceBuffer(rows * recvRowBytes());
  recvScales_ = DeviceBuffer(shape_.fp8 ? rows * fp8BlockCount(shape_.hidden) * sizeof(float) : 0);
  recvIdx_ = DeviceBuffer(shape_.routingOutputs && perRank ? rows * shape_.topk * sizeof(int64_t) : 0);
  recvProbs_ = DeviceBuffer(shape_.routingOutputs ? rows * probsPerRow() * sizeof(float) : 0);
  const void* previousInput = combine_.x;
  const bool ownInput = previousInput == nullptr || previousInput == y_.get();
  y_ = DeviceBuffer(rows * rowBytes());
  dispatch_.recvRows = capacity_;
  dispatch_.recvX = recvX_.get();
  dispatch_.recvScales = shape_.fp8 ? recvScales_.get<float>() : nullptr;
  dispatch_.recvTopkIdx = shape_.routingOutputs && perRank ? recvIdx_.get<int64_t>() : nullptr;
  dispatch_.recvProbs = shape_.routingOutputs ? recvProbs_.get<float>() : nullptr;
  combine_.x = ownInput ? y_.get() : previousInput;
  combine_.rows = capacity_;
}

void DeviceLayer::dispatch() { checkMoe(ncclMoeDispatch(comm_, handle_, &dispatch_, stream_), "ncclMoeDispatch", comm_); }

void DeviceLayer::combine() { checkMoe(ncclMoeCombine(comm_, handle_, &combine_, stream_), "ncclMoeCombine", comm_); }

void DeviceLayer::setExpertOutput(const HostRows& y) {
  if (y.rows() > capacity_ || y.cols() != shape_.hidden || y.type() != shape_.rowType)
    throw std::logic_error("DeviceLayer: expert outputs of " + std::to_string(y.rows()) + " rows for " +
                           std::to_string(capacity_));
  y_.upload(y.bytes(), stream_);
}

void DeviceLayer::zeroExpertOutput() { y_.fill(0, stream_); }

DispatchResult DeviceLayer::downloadDispatch() const {
  DispatchResult got;
  got.x = HostRows(shape_.fp8 ? ElementType::kE4m3 : shape_.rowType, rows_, shape_.hidden);
  recvX_.download(got.x.bytes().data(), got.x.bytes().size(), stream_);
  const size_t rows = static_cast<size_t>(rows_);
  if (shape_.fp8) {
    got.scales.resize(rows * fp8BlockCount(shape_.hidden));
    recvScales_.download(got.scales.data(), got.scales.size() * sizeof(float), stream_);
  }
  if (dispatch_.recvTopkIdx != nullptr) {
    got.topkIdx.resize(rows * shape_.topk);
    recvIdx_.download(got.topkIdx.data(), got.topkIdx.size() * sizeof(int64_t), stream_);
  }
  if (dispatch_.recvProbs != nullptr) {
    got.probs.resize(rows * probsPerRow());
    recvProbs_.download(got.probs.data(), got.probs.size() * sizeof(float), stream_);
  }
  return got;
}

HostRows DeviceLayer::downloadCombined() const {
  HostRows out(shape_.rowType, tokens_, shape_.hidden);
  out_.download(out.bytes().data(), out.bytes().size(), stream_);
  return out;
}

}  // namespace nccl_moe::harness
