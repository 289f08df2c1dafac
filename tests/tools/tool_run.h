// Runs a built tool through /bin/sh, with every launcher variable the rank bootstrap reads cleared
// unless the test sets it, and keeps its exit status, stdout and stderr apart; reads its --help.
#pragma once

#include <string>
#include <vector>

namespace nccl_moe::tools {

struct ToolRun {
  int status = -1;  // the exit status; -1 when it ended by a signal
  std::string out, err;
};

struct ToolCall {
  std::vector<std::string> arguments;
  std::vector<std::string> environment;  // "NAME=value"
  std::string shellPrefix;               // run before the program in the same shell ("ulimit -v ...;")
};

ToolRun runTool(const std::string& program, const ToolCall& call);

// The text --help puts beside `label` ("-b N"), spaces trimmed; empty when no line starts with it.
std::string helpFor(const std::string& help, const std::string& label);

// NCCL_MOE_* as nccl-moe-run sets them for `rank` of `ranks` in one NVLink domain.
std::vector<std::string> rankEnvironment(int rank, int ranks);

}  // namespace nccl_moe::tools
