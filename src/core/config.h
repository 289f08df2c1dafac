// ncclMoeConfig_t -> the resolved configuration of a communicator (defaults and environment
// applied, every field checked).
#pragma once

#include "misc/status.h"
#include "nccl_moe.h"
#include "plan/moe_shape.h"

namespace nccl_moe {

struct CommConfig {
  GroupShape shape;
  ElementType rowType = ElementType::kBf16;
  bool fp8Dispatch = false;
  bool fp8PowerOfTwoScales = false;
  int dispatchSms = 0;
  int combineSms = 0;
  int timeoutMs = 0;
};

// Checks the struct header (size, magic, version) of any versioned API struct.
Status checkStructHeader(const char* name, size_t size, unsigned magic, unsigned version,
                         size_t expectedSize);

// `ranks` is the EP group size; 0 when not known yet (the divisibility check is then skipped).
Status resolveConfig(const ncclMoeConfig_t* config, int ranks, CommConfig* resolved);

}  // namespace nccl_moe
