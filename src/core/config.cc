#include "core/config.h"

#include <algorithm>
#include <cstddef>
#include <utility>

#include "misc/env.h"
#include "plan/low_latency_shape.h"

namespace nccl_moe {

Status checkStructHeader(const char* name, size_t size, unsigned magic, unsigned version,
                         size_t expectedSize) {
  if (magic != NCCL_MOE_MAGIC)
    return Status::invalidArgument(
        format("%s: magic 0x%x is not NCCL_MOE_MAGIC; initialise it with its INITIALIZER macro",
               name, magic));
  if (version != NCCL_MOE_STRUCT_VERSION)
    return Status::invalidArgument(format("%s: version %u is not supported (this library: %u)",
                                          name, version, NCCL_MOE_STRUCT_VERSION));
  if (size != expectedSize)
    return Status::invalidArgument(
        format("%s: size %zu does not match this library's %zu", name, size, expectedSize));
  return Status::ok();
}

Status checkGrowingStructHeader(const char* name, size_t size, unsigned magic, unsigned version,
                                size_t oldestSize, size_t currentSize) {
  return checkStructHeader(name, size, magic, version, size == oldestSize ? oldestSize : currentSize);
}

namespace {

// ncclMoeConfig_t as the first release declared it (before the low-latency fields), and as the
// second did (before combineWindowTokens).
constexpr size_t kConfigSizeBeforeLowLatency = offsetof(ncclMoeConfig_t, lowLatencyMaxTokens);
constexpr size_t kConfigSizeBeforeWindows = offsetof(ncclMoeConfig_t, combineWindowTokens);

int orDefault(int value, int fallback) { return value == NCCL_MOE_UNDEF_INT ? fallback : value; }

Status required(const char* field, int value) {
  if (value == NCCL_MOE_UNDEF_INT)
    return Status::invalidArgument(format("ncclMoeConfig_t.%s must be set", field));
  return Status::ok();
}

Status checkFlag(const char* field, int value) {
  if (value != 0 && value != 1)
    return Status::invalidArgument(format("ncclMoeConfig_t.%s=%d must be 0 or 1", field, value));
  return Status::ok();
}

Status checkSms(const char* field, int value) {
  if (value < 1 || value > 1024)
    return Status::invalidArgument(format("ncclMoeConfig_t.%s=%d must lie in [1, 1024]", field, value));
  return Status::ok();
}

// The low-latency fields: absent from a struct of the first release's size (LL mode off).
Status resolveLowLatency(const ncclMoeConfig_t& config, CommConfig* out) {
  const bool present = structHolds(config.size, offsetof(ncclMoeConfig_t, lowLatencyFp8) + sizeof(int));
  const int maxTokens = present ? orDefault(config.lowLatencyMaxTokens, 0) : 0;
  const int fp8 = present ? orDefault(config.lowLatencyFp8, 0) : 0;
  if (maxTokens < 0 || maxTokens > LowLatencyLimits::kMaxTokens)
    return Status::invalidArgument(format(
        "ncclMoeConfig_t.lowLatencyMaxTokens=%d must lie in [0, %d] (0 turns the low-latency mode off; larger "
        "batches belong to the high-throughput path)",
        maxTokens, LowLatencyLimits::kMaxTokens));
  if (fp8 < 0 || fp8 > 2)
    return Status::invalidArgument(format(
        "ncclMoeConfig_t.lowLatencyFp8=%d must be 0 (BF16), 1 (FP8 E4M3) or 2 (FP8 with power-of-two scales)", fp8));
  out->lowLatencyMaxTokens = maxTokens;
  out->lowLatencyFp8 = fp8;
  return Status::ok();
}

// combineWindowTokens: absent from the structs of the first two releases (then, as when unset, the
// environment's default).
Status resolveCombineWindow(const ncclMoeConfig_t& config, CommConfig* out) {
  const bool present = structHolds(config.size, offsetof(ncclMoeConfig_t, combineWindowTokens) + sizeof(int));
  const int window = orDefault(present ? config.combineWindowTokens : NCCL_MOE_UNDEF_INT, envCombineWindowTokens());
  if (window < 0)
    return Status::invalidArgument(format(
        "ncclMoeConfig_t.combineWindowTokens=%d must be 0 (no windows) or a positive number of tokens", window));
  out->combineWindowTokens = window;
  return Status::ok();
}

}  // namespace

int combineWindowOf(const CommConfig& config, int domains) {
  const int tokens = config.shape.maxTokensPerRank, window = config.combineWindowTokens;
  const bool saves = window > 0 && static_cast<int64_t>(window) * 2 < tokens;
  return domains == 1 && saves ? window : tokens;
}

Status resolveConfig(const ncclMoeConfig_t* config, int ranks, CommConfig* resolved) {
  if (config == nullptr) return Status::invalidArgument("config is NULL");
  // Every released size of the struct is accepted; the fields past the caller's size take their defaults.
  const size_t releasedSize = config->size == kConfigSizeBeforeLowLatency || config->size == kConfigSizeBeforeWindows
                                  ? config->size
                                  : sizeof(ncclMoeConfig_t);
  if (Status s = checkStructHeader("ncclMoeConfig_t", config->size, config->magic, config->version, releasedSize);
      !s.isOk())
    return s;
  for (auto [field, value] : {std::pair<const char*, int>{"numExperts", config->numExperts},
                              {"hiddenSize", config->hiddenSize},
                              {"maxTokensPerRank", config->maxTokensPerRank}})
    if (Status s = required(field, value); !s.isOk()) return s;

  CommConfig out;
  out.shape.ranks = ranks > 0 ? ranks : 1;
  out.shape.experts = config->numExperts;
  out.shape.hidden = config->hiddenSize;
  out.shape.maxTokensPerRank = config->maxTokensPerRank;
  out.shape.maxTopk = orDefault(config->maxTopk, std::min(kDefaultMaxTopk, config->numExperts));
  if (Status s = checkGroupShape(out.shape); !s.isOk()) return s;

  const int dataType = orDefault(config->dataType, ncclBfloat16);
  if (dataType == ncclBfloat16)
    out.rowType = ElementType::kBf16;
  else if (dataType == ncclFloat32)
    out.rowType = ElementType::kFp32;
  else
    return Status::invalidArgument(
        format("ncclMoeConfig_t.dataType=%d is not supported: use ncclBfloat16 or ncclFloat32", dataType));

  const int fp8 = orDefault(config->fp8Dispatch, 0);
  const int pow2 = orDefault(config->fp8PowerOfTwoScales, 0);
  if (Status s = checkFlag("fp8Dispatch", fp8); !s.isOk()) return s;
  if (Status s = checkFlag("fp8PowerOfTwoScales", pow2); !s.isOk()) return s;
  out.fp8Dispatch = fp8 == 1;
  out.fp8PowerOfTwoScales = pow2 == 1;

  out.dispatchSms = orDefault(config->dispatchSms, envDispatchSms());
  out.combineSms = orDefault(config->combineSms, envCombineSms());
  if (Status s = checkSms("dispatchSms", out.dispatchSms); !s.isOk()) return s;
  if (Status s = checkSms("combineSms", out.combineSms); !s.isOk()) return s;

  out.timeoutMs = orDefault(config->timeoutMs, envTimeoutMs());
  if (out.timeoutMs < 1)
    return Status::invalidArgument(
        format("ncclMoeConfig_t.timeoutMs=%d must be positive", out.timeoutMs));
  if (Status s = resolveLowLatency(*config, &out); !s.isOk()) return s;
  if (Status s = resolveCombineWindow(*config, &out); !s.isOk()) return s;
  *resolved = out;
  return Status::ok();
}

}  // namespace nccl_moe
