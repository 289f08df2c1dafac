// nccl-moe-topo: what the nccl-moe scheduler sees of a machine or cluster, and what an MoE
// dispatch/combine costs on it at the speed of light.
#include <iostream>
#include <string>

#include <nccl.h>

#include "cli_args.h"
#include "commands.h"
#include "nccl_moe.h"
#include "tools/common/version.h"
#include "topology/error.h"

namespace {

constexpr const char* kHelp =
    "usage: nccl-moe-topo <command> [options]\n"
    "\n"
    "commands:\n"
    "  probe      probe this machine: GPUs, NICs, NUMA, PCIe paths, NVLinks\n"
    "  show       show a cluster file or a built-in preset\n"
    "  plan       speed-of-light bytes and times of MoE dispatch/combine on a cluster\n"
    "  validate   check a cluster file (JSON or NCCL topology XML)\n"
    "  presets    list the built-in machines\n"
    "\n"
    "Run 'nccl-moe-topo <command> --help' for a command's options; 'nccl-moe-topo --version' prints the\n"
    "versions.\n";

struct Command {
  const char* name;
  int (*run)(const nccl_moe::topo::cli::Argv&);
};

constexpr Command kCommands[] = {{"probe", nccl_moe::topo::cli::runProbe},
                                 {"show", nccl_moe::topo::cli::runShow},
                                 {"plan", nccl_moe::topo::cli::runPlan},
                                 {"validate", nccl_moe::topo::cli::runValidate},
                                 {"presets", nccl_moe::topo::cli::runPresets}};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kHelp;
    return 2;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    std::cout << kHelp;
    return 0;
  }
  if (name == "--version") {
    // The tool does not load NCCL (it only needs nccl.h): the version is its headers'.
    std::cout << "nccl-moe-topo "
              << nccl_moe::tools::toolVersion(NCCL_MOE_VERSION_CODE, NCCL_VERSION_CODE, "built with its headers") << "\n";
    return 0;
  }
  nccl_moe::topo::cli::Argv rest(argv + 2, argv + argc);
  for (const auto& command : kCommands) {
    if (name != command.name) continue;
    try {
      return command.run(rest);
    } catch (const nccl_moe::topo::cli::UsageError& error) {
      std::cerr << error.message << "\n";
      return 2;
    } catch (const nccl_moe::topo::Error& error) {
      std::cerr << "nccl-moe-topo " << name << ": error: " << error.what() << "\n";
      return 1;
    } catch (const std::exception& error) {
      std::cerr << "nccl-moe-topo " << name << ": internal error: " << error.what() << "\n";
      return 1;
    }
  }
  std::cerr << "nccl-moe-topo: unknown command '" << name << "'\n\n" << kHelp;
  return 2;
}
