#include "transport/control_comm.h"

#include "misc/host_wait.h"
#include "misc/nccl_status.h"
#include "transport/peer_buffer.h"

namespace nccl_moe {

Status ControlComm::create(ncclComm_t parent, int rank, int ranks, int timeoutMs, std::unique_ptr<ControlComm>* out) {
  std::unique_ptr<ControlComm> control(new ControlComm());
  control->ranks_ = ranks;
  control->timeoutMs_ = timeoutMs;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  const ncclResult_t split = ncclCommSplit(parent, 0, rank, &control->comm_, &config);
  if (split != ncclSuccess && split != ncclInProgress) {
    control->abort();
    return ncclStatus(split, "ncclCommSplit(control)");
  }
  if (Status s = waitCommReady(control->comm_, timeoutMs, "ncclCommSplit(control)"); !s.isOk()) {
    control->abort();
    return s;
  }
  *out = std::move(control);
  return Status::ok();
}

ControlComm::~ControlComm() {
  if (comm_ == nullptr) return;
  // Nothing is pending after a successful exchange, so finalising is quick; if it is not done in
  // time something is stuck after all: abort instead.
  const ncclResult_t finalized = ncclCommFinalize(comm_);
  if ((finalized == ncclSuccess || finalized == ncclInProgress) &&
      waitCommReady(comm_, timeoutMs_, "ncclCommFinalize(control)").isOk()) {
    ncclCommDestroy(comm_);
    comm_ = nullptr;
  } else {
    abort();
  }
}

Status ControlComm::allGather(const void* mine, size_t bytes, std::vector<uint8_t>* all) {
  if (comm_ == nullptr)
    return {ncclRemoteError, "the communicator's control exchange was aborted after an earlier failure"};
  Status status = allGatherBytes(comm_, ranks_, mine, bytes, all, timeoutMs_);
  if (!status.isOk()) abort();
  return status;
}

void ControlComm::abort() {
  if (comm_ != nullptr) ncclCommAbort(comm_);
  comm_ = nullptr;
}

}  // namespace nccl_moe
