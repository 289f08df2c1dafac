// Every NCCL_MOE_* environment variable the library and its plugin read, declared in one table
// (name, default, range, what it does) as NCCL's param.h does, and read through it: a value that
// is set is logged (INFO) once, one that is ignored is warned about once, even when NCCL_MOE_DEBUG
// is unset. `paramTable()` prints the table (nccl-moe-perf --help); docs/environment.md's table lists the same
// variables (a test holds them equal).
#pragma once

#include <climits>
#include <cstdint>
#include <string>
#include <vector>

namespace nccl_moe {

struct IntParam {
  const char* name;
  int64_t fallback;  // when unset or ignored
  int64_t lo;        // accepted range
  int64_t hi;
  const char* doc;
  const char* shownDefault = nullptr;  // the table's words for a fallback the call site decides
};

struct TextParam {
  const char* name;
  const char* fallback;  // shown in the table
  const char* doc;
};

namespace params {
inline constexpr IntParam kTimeoutMs{"NCCL_MOE_TIMEOUT_MS", 300000, 1, INT_MAX,
                                     "default of ncclMoeConfig_t.timeoutMs: every wait on a peer fails after this"};
inline constexpr IntParam kDispatchSms{"NCCL_MOE_DISPATCH_SMS", 24, 1, 1024, "default SM budget of dispatch"};
inline constexpr IntParam kCombineSms{"NCCL_MOE_COMBINE_SMS", 24, 1, 1024, "default SM budget of combine"};
inline constexpr IntParam kCombineWindowTokens{
    "NCCL_MOE_COMBINE_WINDOW_TOKENS", 0, 0, 1 << 24,
    "default of ncclMoeConfig_t.combineWindowTokens: combine in windows of this many tokens per source rank (0: none)"};
// 0: not set; when set, 1 to the rank count (checked at creation).
inline constexpr IntParam kDomainSize{"NCCL_MOE_DOMAIN_SIZE", 0, 1, INT_MAX,
                                      "ranks per NVLink domain, overriding the plan choice (every rank the same)",
                                      "topology"};
// 0: the plan's choice; when set, 1 to kMaxNetworkChunks (transport/protocol.h).
inline constexpr IntParam kNetChunks{"NCCL_MOE_NET_CHUNKS", 0, 1, 64,
                                     "two-hop: network chunks per dispatch and combine (every rank the same)", "plan"};
inline constexpr IntParam kTopology{"NCCL_MOE_TOPOLOGY", 1, 0, 1,
                                    "0 skips the topology probe and its gather at communicator creation"};
inline constexpr IntParam kLayoutEngine{"NCCL_MOE_LAYOUT_ENGINE", 2, 0, 2,
                                        "layout kernels: 2 the count-first engine in one kernel with one NVLink "
                                        "domain (two with several), 1 the count-first engine in two kernels, 0 the "
                                        "earlier scan engine (every rank the same)"};
inline constexpr IntParam kLowLatencyTrace{"NCCL_MOE_LL_TRACE", 0, 0, 1,
                                           "1: the low-latency kernels time their steps (globaltimer) and each rank logs "
                                           "the mean offsets when its communicator is destroyed"};
inline constexpr IntParam kNcclMaxChannels{"NCCL_MOE_NCCL_MAX_CHANNELS", 0, 0, 64,
                                           "tuner plugin: at most this many NCCL channels (0: no cap)"};
inline constexpr IntParam kOverlapNccl{"NCCL_MOE_OVERLAP_NCCL", 0, 0, 1,
                                       "tuner plugin: 1 leaves NCCL the SMs the MoE budgets do not take"};
inline constexpr TextParam kDebug{"NCCL_MOE_DEBUG", "unset", "log level: VERSION, WARN, INFO or TRACE"};
inline constexpr TextParam kDebugFile{"NCCL_MOE_DEBUG_FILE", "stderr", "file the log lines are appended to"};
inline constexpr TextParam kChainTuner{"NCCL_MOE_CHAIN_TUNER", "unset",
                                       "tuner plugin: another tuner asked first (path or short name)"};
}  // namespace params

// Not a variable: the default of ncclMoeConfig_t.maxTopk (capped at the experts).
inline constexpr int kDefaultMaxTopk = 8;

// The variable's value; its fallback when unset, or (with a warning) when it does not parse or
// lies outside [lo, hi]. *rejected (when given) tells which happened.
int64_t readParam(const IntParam& param, bool* rejected = nullptr);
// The same with a fallback and range the call site knows better (the plan's chunk count, the
// rank count).
int64_t readParam(const IntParam& param, int64_t fallback, int64_t lo, int64_t hi, bool* rejected = nullptr);
// The variable's text, or NULL when unset (getenv).
const char* readParam(const TextParam& param);

// Every variable of the table: one line each, name, default, range and what it does.
std::vector<std::string> paramTable();

// The integer reader itself, for a variable outside the table (launchers, tests).
int64_t envInt(const char* name, int64_t fallback, int64_t lo, int64_t hi, bool* rejected = nullptr);

inline int envTimeoutMs() { return static_cast<int>(readParam(params::kTimeoutMs)); }
inline int envDispatchSms() { return static_cast<int>(readParam(params::kDispatchSms)); }
inline int envCombineSms() { return static_cast<int>(readParam(params::kCombineSms)); }
inline int envCombineWindowTokens() { return static_cast<int>(readParam(params::kCombineWindowTokens)); }

}  // namespace nccl_moe
