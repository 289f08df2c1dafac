// What the rank programs of the GPU checks (rank_check.cc, ll_rank_check.cc) share: the rank for
// messages, the failure count with its report, and reading device buffers back on the legacy
// default stream. Each program is one translation unit, so these are its only copies.
#pragma once

#include <cuda_runtime.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "nccl_moe.h"
#include "tools/harness/device.h"

namespace nccl_moe::rank_check {

inline int gRank = 0;      // this rank, once bootstrapped (messages name it)
inline int gFailures = 0;  // checks failed so far; the first 20 are reported

inline void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline void fail(const char* fmt, ...) {
  if (++gFailures > 20) return;
  va_list args;
  va_start(args, fmt);
  std::fprintf(stderr, "rank %d: FAIL: ", gRank);
  std::vfprintf(stderr, fmt, args);
  std::fprintf(stderr, "\n");
  va_end(args);
}

// The checks' device buffers (the tools' DeviceBuffer, on the library's DeviceMemory) are filled,
// uploaded and read back on the legacy default stream, as cudaMemcpy does: such a copy waits for
// nothing the library enqueued on the checks' non-blocking streams (the zero-copy checks enqueue
// their next copy right after a call, with no host wait between).
using harness::DeviceBuffer;
inline const cudaStream_t kCopyStream = cudaStreamLegacy;

inline std::vector<uint8_t> download(const DeviceBuffer& buffer) {
  std::vector<uint8_t> host(buffer.bytes());
  buffer.download(host.data(), host.size(), kCopyStream);
  return host;
}

// The shape and budgets both programs configure alike; each then sets its own mode's fields.
inline ncclMoeConfig_t groupConfig(int experts, int hidden, int tokens, int maxTopk, int sms, int timeoutMs) {
  ncclMoeConfig_t config = NCCL_MOE_CONFIG_INITIALIZER;
  config.numExperts = experts;
  config.hiddenSize = hidden;
  config.maxTokensPerRank = tokens;
  config.maxTopk = maxTopk;
  config.dispatchSms = sms;
  config.combineSms = sms;
  config.timeoutMs = timeoutMs;
  return config;
}

}  // namespace nccl_moe::rank_check
