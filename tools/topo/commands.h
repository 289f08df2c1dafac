// The nccl-moe-topo commands. Each takes its arguments after the command name and returns the
// process exit status: 0 success, 1 invalid input or failed validation (topo::Error), 2 usage.
#pragma once

#include <string>
#include <vector>

namespace nccl_moe::topo::cli {

using Argv = std::vector<std::string>;

int runProbe(const Argv& argv);
int runShow(const Argv& argv);
int runPlan(const Argv& argv);
int runValidate(const Argv& argv);
int runPresets(const Argv& argv);

// True (after printing `help`) when argv asks for help.
bool printedHelp(const Argv& argv, const char* help);

}  // namespace nccl_moe::topo::cli
