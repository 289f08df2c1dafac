// The byte layout of fuzz_config's inputs, shared with the seed writer: fixed-size structs first
// (memcpy'd, short inputs zero-filled), then text lines for the environment variables.
#pragma once

#include <cstdint>

#include "nccl_moe.h"

namespace nccl_moe::fuzz {

struct ConfigInput {
  ncclMoeConfig_t config;
  ncclMoeLayoutOptions_t layout;
  int32_t ranks;
  uint32_t flags;
  int64_t lo, hi, fallback;  // envInt's bounds for the free variable
};

// flags: without these bits the struct headers are made valid, so most inputs reach the checks
// behind the header; each env bit sets its variable from the next text line (else unsets it).
enum ConfigInputFlags : uint32_t {
  kRawConfigHeader = 1u << 0,
  kRawLayoutHeader = 1u << 1,
  kSetTimeoutEnv = 1u << 2,
  kSetDispatchSmsEnv = 1u << 3,
  kSetCombineSmsEnv = 1u << 4,
  kSetFreeEnv = 1u << 5,
};

}  // namespace nccl_moe::fuzz
