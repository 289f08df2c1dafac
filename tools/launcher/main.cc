// nccl-moe-run: starts N ranks of a program as a one-machine virtual cluster (see usageText()).
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "launch_job.h"
#include "launch_options.h"
#include "tools/common/loaded_nccl.h"

namespace {

constexpr int kUsageExitCode = 2;
constexpr int kLauncherFailureExitCode = 1;

}  // namespace

int main(int argc, char** argv) {
  using namespace nccl_moe::launcher;
  const std::vector<std::string> arguments(argv + 1, argv + argc);
  LaunchOptions options;
  try {
    options = parseLaunchOptions(arguments);
  } catch (const UsageError& error) {
    std::cerr << "nccl-moe-run: " << error.what() << "\nTry 'nccl-moe-run --help'.\n";
    return kUsageExitCode;
  }
  if (options.help) {
    std::cout << usageText();
    return 0;
  }
  if (options.version) {
    std::cout << "nccl-moe-run " << nccl_moe::tools::versionWithLoadedNccl() << "\n";
    return 0;
  }
  try {
    return launchJob(options);
  } catch (const UsageError& error) {
    std::cerr << "nccl-moe-run: " << error.what() << "\n";
    return kUsageExitCode;
  } catch (const std::exception& error) {
    std::cerr << "nccl-moe-run: " << error.what() << "\n";
    return kLauncherFailureExitCode;
  }
}
