// Argument checks of the public calls that need no device access: struct headers, pointers,
// shapes against the configuration and the handle. Contents (expert ids, probabilities) are
// checked where the data lives (plan/routing.h on the host, the layout kernel on the device).
#pragma once

#include <cstdint>

#include "core/config.h"
#include "misc/status.h"
#include "nccl_moe.h"

namespace nccl_moe {

// What a dispatch or combine needs to know about the layout behind a handle.
struct HandleSummary {
  RoutingFormat format = RoutingFormat::kTopk;
  LayoutOptions options;
  int topk = 0;
  int numTokens = 0;
  int64_t knownRecvRows = -1;     // set once ncclMoeHandleGetCounts has read it, else -1
};

// Validates a routing descriptor and converts it to the host vocabulary.
Status checkRoutingArgs(const CommConfig& config, const ncclMoeRouting_t* routing,
                        HandleSummary* summary);
Status checkLayoutArgs(const CommConfig& config, const ncclMoeLayoutOptions_t* options,
                       LayoutOptions* resolved);
Status checkDispatchArgs(const CommConfig& config, const HandleSummary& handle,
                         const ncclMoeDispatchArgs_t* args);
Status checkCombineArgs(const CommConfig& config, const HandleSummary& handle,
                        const ncclMoeCombineArgs_t* args);

}  // namespace nccl_moe
