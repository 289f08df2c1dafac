#include <iostream>

#include "commands.h"
#include "topology/presets.h"

namespace nccl_moe::topo::cli {

namespace {
constexpr const char* kHelp =
    "usage: nccl-moe-topo presets\n"
    "\n"
    "Lists the built-in machine models for show/plan --preset NAME [--nodes N].\n";
}  // namespace

bool printedHelp(const Argv& argv, const char* help) {
  for (const auto& arg : argv) {
    if (arg == "--help" || arg == "-h") {
      std::cout << help;
      return true;
    }
  }
  return false;
}

int runPresets(const Argv& argv) {
  if (printedHelp(argv, kHelp)) return 0;
  if (!argv.empty()) {
    std::cerr << "nccl-moe-topo presets: takes no arguments (see --help)\n";
    return 2;
  }
  for (const auto& preset : presetList()) {
    std::cout << preset.name << std::string(preset.name.size() < 16 ? 16 - preset.name.size() : 1, ' ')
              << preset.summary << " (--nodes counts " << preset.unit << "s)\n";
  }
  return 0;
}

}  // namespace nccl_moe::topo::cli
