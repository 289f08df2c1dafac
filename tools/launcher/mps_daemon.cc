#include "mps_daemon.h"

#include <filesystem>

#include "executable_search.h"
#include "rank_output.h"
#include "run_command.h"

namespace nccl_moe::launcher {
namespace {

constexpr const char* kDefaultControlProgram = "nvidia-cuda-mps-control";
constexpr const char* kControlOverride = "NCCL_MOE_MPS_CONTROL";
constexpr double kControlTimeoutSeconds = 30;

std::string findControlProgram(const EnvironmentBlock& inherited) {
  const std::string path = inherited.get("PATH").value_or("/usr/local/bin:/usr/bin:/bin");
  if (const std::optional<std::string> chosen = inherited.get(kControlOverride)) {
    if (const std::optional<std::string> found = findExecutable(*chosen, path)) return *found;
    throw MpsError(std::string("--mps: ") + kControlOverride + "='" + *chosen +
                   "' is not an executable program");
  }
  if (const std::optional<std::string> found = findExecutable(kDefaultControlProgram, path)) {
    return *found;
  }
  throw MpsError(std::string("--mps: ") + kDefaultControlProgram +
                 " was not found in PATH; it comes with the NVIDIA driver's MPS tools. Install "
                 "them, or set " + kControlOverride + " to the control program's path");
}

std::string describeFailure(const CommandResult& result) {
  std::string text = result.status ? result.status->describe() : "no answer within the limit";
  if (!result.output.empty()) text += "; it said: " + result.output;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace

MpsDaemon::MpsDaemon(const MpsSettings& settings, SignalPipe& signals)
    : controlProgram_(findControlProgram(settings.inherited)),
      environment_(settings.inherited),
      signals_(signals),
      messageFd_(settings.messageFd) {
  // Short parent: the pipe directory holds a unix socket, whose path is limited to 107 bytes.
  directory_ = std::make_unique<TempDir>("/tmp", "nccl-moe-mps-");
  std::string pipeDir = directory_->path() + "/pipe";
  std::string logDir = settings.outputDir ? *settings.outputDir + "/mps-log"
                                          : directory_->path() + "/log";
  if (!settings.overrideEnvironment) {
    pipeDir = settings.inherited.get("CUDA_MPS_PIPE_DIRECTORY").value_or(pipeDir);
    logDir = settings.inherited.get("CUDA_MPS_LOG_DIRECTORY").value_or(logDir);
  }
  std::filesystem::create_directories(pipeDir);
  std::filesystem::create_directories(logDir);
  variables_ = {{"CUDA_MPS_PIPE_DIRECTORY", pipeDir}, {"CUDA_MPS_LOG_DIRECTORY", logDir}};
  for (const auto& [name, value] : variables_) environment_.set(name, value);

  const ChildSpec start{controlProgram_, {controlProgram_, "-d"}, environment_.entries()};
  const CommandResult result = runCommand(start, "", kControlTimeoutSeconds, signals_);
  if (!result.status || !result.status->success()) {
    throw MpsError("--mps: '" + controlProgram_ + " -d' failed (" + describeFailure(result) +
                   "); MPS log directory: " + logDir);
  }
}

MpsDaemon::~MpsDaemon() {
  try {
    const ChildSpec stop{controlProgram_, {controlProgram_}, environment_.entries()};
    const CommandResult result = runCommand(stop, "quit\n", kControlTimeoutSeconds, signals_);
    if (!result.status || !result.status->success()) {
      writeAll(messageFd_, "nccl-moe-run: stopping the MPS daemon ('echo quit | " +
                               controlProgram_ + "') failed: " + describeFailure(result) + "\n");
    }
  } catch (const std::exception& error) {
    writeAll(messageFd_, std::string("nccl-moe-run: cannot stop the MPS daemon: ") +
                             error.what() + "\n");
  }
}

}  // namespace nccl_moe::launcher
