// Template part of phase_report.h.
#pragma once

#include <cstdio>

namespace nccl_moe::perf {

template <class Start, class End>
std::string describePhases(Start startUs, End endUs) {
  std::string text;
  for (int p = 0; p < ncclMoeNumPhases; ++p) {
    const double start = startUs(p), end = endUs(p);
    if (start < 0) continue;
    char item[96];
    std::snprintf(item, sizeof item, "%s%s %.1f-%.1f", text.empty() ? "" : " | ",
                  ncclMoePhaseName(static_cast<ncclMoePhase_t>(p)), start, end);
    text += item;
  }
  return text;
}

}  // namespace nccl_moe::perf
