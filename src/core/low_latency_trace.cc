#include "core/low_latency_trace.h"

#include "misc/status.h"  // format

namespace nccl_moe {

namespace {

const char* stepName(int step) {
  switch (step) {
    case kTraceIdsChecked: return "ids checked";
    case kTraceCredited: return "credited";
    case kTraceBlockCopied: return "block 0 copied";
    case kTraceBlockSent: return "block 0 sent";
    case kTraceRowsSent: return "rows sent";
    case kTraceRecordSent: return "arrival released";
    case kTraceArrived: return "all arrived";
    case kTraceJudged: return "judged";
    case kTraceReceived: return "received";
    case kTraceDone: return "credits released";
    default: return "?";
  }
}

}  // namespace

std::string describeLowLatencyTrace(const LowLatencyTrace& trace, LowLatencyTraceOp op) {
  const uint64_t calls = trace.hits[op][kTraceDone];
  if (calls == 0) return {};
  std::string line = format("%s, %llu calls, us from the kernel's start:", op == kTraceDispatch ? "dispatch" : "combine",
                            static_cast<unsigned long long>(calls));
  const char* separator = " ";
  for (int step = kTraceStart + 1; step < kLowLatencyTraceSteps; ++step) {
    const uint64_t hits = trace.hits[op][step];
    if (hits == 0) continue;
    line += format("%s%s %.1f", separator, stepName(step), trace.sumNs[op][step] / 1e3 / static_cast<double>(hits));
    if (hits != calls) line += format(" (in %llu)", static_cast<unsigned long long>(hits));
    separator = " | ";
  }
  return line;
}

}  // namespace nccl_moe
