// nccl-moe-perf's flags parsed as the program parses them, for the CPU tests of its options and of
// --low-latency (test_perf_options.cc, test_perf_ll.cc).
#pragma once

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tools/perf/options.h"

namespace nccl_moe::perf::test {

// The options of `arguments` (the program name is added), parsed and checked; a refusal throws.
inline Options parsed(std::vector<const char*> arguments) {
  arguments.insert(arguments.begin(), "nccl-moe-perf");
  Options o;
  std::ostringstream out;
  EXPECT_EQ(parseOptions(static_cast<int>(arguments.size()), arguments.data(), &o, out), tools::ParseOutcome::kRun);
  checkOptions(o);
  return o;
}

// The message a refusal of `arguments` gives ("" when they are accepted).
inline std::string usageErrorOf(std::vector<const char*> arguments) {
  try {
    parsed(std::move(arguments));
  } catch (const tools::UsageError& error) {
    return error.what();
  }
  return "";
}

}  // namespace nccl_moe::perf::test
