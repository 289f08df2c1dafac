// The objects behind the public opaque handles.
#pragma once

#include <nccl.h>

#include <cstdint>
#include <string>

#include "core/call_checks.h"
#include "core/config.h"

struct ncclMoeComm {
  ncclComm_t nccl = nullptr;
  int rank = 0;
  nccl_moe::CommConfig config;
  uint64_t bufferEpoch = 0;  // bumped when buffers are reallocated: older handles are stale
  std::string lastError;
};

struct ncclMoeHandle {
  ncclMoeComm* comm = nullptr;
  uint64_t bufferEpoch = 0;
  nccl_moe::HandleSummary summary;
};
