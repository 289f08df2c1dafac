// NCCL_MOE_* environment variables, declared in one place with their defaults (as NCCL's param.h).
#pragma once

#include <cstdint>

namespace nccl_moe {

struct EnvDefaults {
  static constexpr int kTimeoutMs = 300000;
  static constexpr int kDispatchSms = 24;
  static constexpr int kCombineSms = 24;
  static constexpr int kMaxTopk = 8;
};

// Integer variable: `fallback` when unset; `fallback` and a warning (once per variable and value,
// printed even when NCCL_MOE_DEBUG is unset, as the setting is ignored) when it does not parse or
// lies outside [lo, hi]. *rejected (when given) tells which happened.
int64_t envInt(const char* name, int64_t fallback, int64_t lo, int64_t hi, bool* rejected = nullptr);

int envTimeoutMs();      // NCCL_MOE_TIMEOUT_MS
int envDispatchSms();    // NCCL_MOE_DISPATCH_SMS
int envCombineSms();     // NCCL_MOE_COMBINE_SMS

}  // namespace nccl_moe
