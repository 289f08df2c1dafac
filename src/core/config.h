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
  int lowLatencyMaxTokens = 0;  // N of the low-latency mode; 0: off (docs/low_latency.md)
  int lowLatencyFp8 = 0;        // 0: BF16 LL dispatch; 1: FP8 E4M3; 2: FP8 with power-of-two scales
  int combineWindowTokens = 0;  // 0: the combine holds every token's partials at once (no windows)
};

// Tokens per combine window of a communicator with `domains` NVLink domains (GroupDims::
// combineWindow): the configured window where it saves memory (2 x window < maxTokensPerRank) and
// the communicator has one domain, else maxTokensPerRank (one window).
int combineWindowOf(const CommConfig& config, int domains);

// Checks the struct header (size, magic, version) of any versioned API struct.
Status checkStructHeader(const char* name, size_t size, unsigned magic, unsigned version,
                         size_t expectedSize);

// The same for a struct that gained fields at its end: its first release's size (`oldestSize`) is
// accepted beside the current one; the caller reads only the fields that size covers.
Status checkGrowingStructHeader(const char* name, size_t size, unsigned magic, unsigned version,
                                size_t oldestSize, size_t currentSize);

// Whether a struct of `size` bytes holds the field that ends at `fieldEnd` (offsetof + sizeof).
inline bool structHolds(size_t size, size_t fieldEnd) { return size >= fieldEnd; }

// `ranks` is the EP group size; 0 when not known yet (the divisibility check is then skipped).
Status resolveConfig(const ncclMoeConfig_t* config, int ranks, CommConfig* resolved);

}  // namespace nccl_moe
