#include "launch_job.h"

#include <unistd.h>

#include <memory>

#include "executable_search.h"
#include "free_port.h"
#include "machine_probes.h"
#include "mps_daemon.h"
#include "rank_environment.h"
#include "rank_output.h"
#include "supervisor.h"

namespace nccl_moe::launcher {
namespace {

void warn(const std::string& text) { writeAll(STDERR_FILENO, "nccl-moe-run: warning: " + text + "\n"); }

std::string resolveProgram(const std::string& name, const EnvironmentBlock& inherited) {
  const std::string path = inherited.get("PATH").value_or("/usr/local/bin:/usr/bin:/bin");
  if (std::optional<std::string> found = findExecutable(name, path)) return *found;
  if (name.find('/') != std::string::npos) {
    throw SpawnError("program '" + name + "' is not an executable file");
  }
  throw SpawnError("program '" + name + "' was not found in PATH");
}

}  // namespace

int launchJob(const LaunchOptions& options) {
  // First, so that an interrupt from here on stops ranks and MPS instead of orphaning them.
  SignalPipe signals;
  const EnvironmentBlock inherited = EnvironmentBlock::fromProcess();
  const std::string executable = resolveProgram(options.program.front(), inherited);

  const int detectedGpus = options.gpus ? 0 : countVisibleGpus();
  const JobPlacement placement = placeRanks(options, inherited, detectedGpus);
  for (const std::string& warning : placement.warnings) warn(warning);

  JobFacts facts;
  facts.uniqueIdHex = createUniqueIdHex();
  facts.masterPort = findFreePort();

  std::unique_ptr<MpsDaemon> mps;
  if (options.mps) {
    mps = std::make_unique<MpsDaemon>(
        MpsSettings{inherited, options.overrideEnvironment, options.outputDir, STDERR_FILENO},
        signals);
    facts.mpsVariables = mps->rankVariables();
  }

  const RankEnvironments environments = buildRankEnvironments(placement, options, inherited, facts);
  for (const std::string& warning : environments.warnings) warn(warning);
  std::vector<ChildSpec> specs;
  for (const EnvironmentBlock& environment : environments.perRank) {
    specs.push_back(ChildSpec{executable, options.program, environment.entries()});
  }

  SupervisorSettings settings;
  settings.timeoutSeconds = options.timeoutSeconds;
  settings.failGraceSeconds = options.failGraceSeconds;
  settings.killGraceSeconds = options.killGraceSeconds;
  settings.outputDir = options.outputDir;
  const JobResult result = superviseRanks(specs, settings, signals);
  writeAll(STDERR_FILENO, formatSummary(result));
  return result.exitCode();
}

}  // namespace nccl_moe::launcher
