// Configuration resolution: ncclMoeConfig_t and ncclMoeLayoutOptions_t as any caller may fill
// them (uninitialised, wrong size, hostile values), NCCL_MOE_* variables set to any text, and
// envInt with any bounds. Rejections must be a non-OK Status; what is accepted must satisfy the
// documented ranges, so later size arithmetic cannot overflow.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "config_input.h"
#include "core/call_checks.h"
#include "core/config.h"
#include "misc/env.h"
#include "fuzz_common.h"

namespace {

using namespace nccl_moe;

// The next '\n'-terminated line of the text tail (embedded NULs end the value early, as
// setenv would see it).
std::string nextLine(const char*& at, const char* end) {
  const char* stop = static_cast<const char*>(std::memchr(at, '\n', end - at));
  if (stop == nullptr) stop = end;
  std::string line(at, stop);
  at = stop == end ? end : stop + 1;
  return line;
}

void setOrUnset(const char* name, bool set, const char*& at, const char* end) {
  if (set)
    setenv(name, nextLine(at, end).c_str(), 1);
  else
    unsetenv(name);
}

void checkResolved(const ncclMoeConfig_t& in, const CommConfig& out) {
  if (out.shape.experts != in.numExperts || out.shape.hidden != in.hiddenSize ||
      out.shape.maxTokensPerRank != in.maxTokensPerRank)
    fuzz::bug("resolveConfig changed a required field");
  if (!checkGroupShape(out.shape).isOk()) fuzz::bug("resolveConfig accepted a shape checkGroupShape rejects");
  if (out.dispatchSms < 1 || out.dispatchSms > 1024 || out.combineSms < 1 || out.combineSms > 1024)
    fuzz::bug("resolveConfig accepted an SM budget outside [1, 1024]");
  if (out.timeoutMs < 1) fuzz::bug("resolveConfig accepted a timeout < 1 ms");
  if (out.rowType != ElementType::kBf16 && out.rowType != ElementType::kFp32)
    fuzz::bug("resolveConfig accepted a row type other than bf16/fp32");
}

}  // namespace

// Rejected values warn once each even without NCCL_MOE_DEBUG; keep the path, lose the noise.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("NCCL_MOE_DEBUG_FILE", "/dev/null", /*overwrite=*/0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ConfigInput input;
  std::memset(&input, 0, sizeof(input));
  std::memcpy(&input, data, size < sizeof(input) ? size : sizeof(input));
  const char* at = reinterpret_cast<const char*>(data) + (size < sizeof(input) ? size : sizeof(input));
  const char* end = reinterpret_cast<const char*>(data) + size;

  if (!(input.flags & fuzz::kRawConfigHeader)) {
    input.config.size = sizeof(ncclMoeConfig_t);
    input.config.magic = NCCL_MOE_MAGIC;
    input.config.version = NCCL_MOE_STRUCT_VERSION;
  }
  if (!(input.flags & fuzz::kRawLayoutHeader)) {
    input.layout.size = sizeof(ncclMoeLayoutOptions_t);
    input.layout.magic = NCCL_MOE_MAGIC;
    input.layout.version = NCCL_MOE_STRUCT_VERSION;
  }
  setOrUnset("NCCL_MOE_TIMEOUT_MS", input.flags & fuzz::kSetTimeoutEnv, at, end);
  setOrUnset("NCCL_MOE_DISPATCH_SMS", input.flags & fuzz::kSetDispatchSmsEnv, at, end);
  setOrUnset("NCCL_MOE_COMBINE_SMS", input.flags & fuzz::kSetCombineSmsEnv, at, end);
  setOrUnset("NCCL_MOE_FUZZ_INT", input.flags & fuzz::kSetFreeEnv, at, end);

  // envInt: the fallback, or a value inside [lo, hi]; never anything else. (Every new rejected
  // value stays in envInt's warned-once set, so this process grows slowly: run.sh forks long runs.)
  bool rejected = false;
  const int64_t value = envInt("NCCL_MOE_FUZZ_INT", input.fallback, input.lo, input.hi, &rejected);
  if (rejected ? value != input.fallback : value != input.fallback && (value < input.lo || value > input.hi))
    fuzz::bug("envInt returned a value that is neither the fallback nor in range");
  // The library's own variables, through their typed readers.
  if (envTimeoutMs() < 1 || envDispatchSms() < 1 || envDispatchSms() > 1024 || envCombineSms() < 1 ||
      envCombineSms() > 1024)
    fuzz::bug("an NCCL_MOE_* reader returned a value outside its range");

  CommConfig resolved;
  if (!resolveConfig(&input.config, input.ranks, &resolved).isOk()) return 0;
  checkResolved(input.config, resolved);

  LayoutOptions layout;
  if (!checkLayoutArgs(resolved, &input.layout, &layout).isOk()) return 0;
  const int64_t rows = maxRowsPerRank(resolved.shape, layout);
  if (rows < 0 || rows > ShapeLimits::kMaxRowsPerRank)
    fuzz::bug("checkLayoutArgs accepted options whose rows per rank exceed the 32-bit row ids");
  return 0;
}
