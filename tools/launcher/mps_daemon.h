// A private CUDA MPS daemon for one job: started before the ranks, stopped after them, also when
// the job fails, times out or the launcher is interrupted (the destructor stops it).
//
// Private pipe and log directories keep it apart from any system-wide daemon; the ranks get the
// same CUDA_MPS_PIPE_DIRECTORY so their CUDA contexts connect to it. The control program is
// NCCL_MOE_MPS_CONTROL when set (tests use a fake), else nvidia-cuda-mps-control from PATH.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "environment_block.h"
#include "signal_pipe.h"
#include "temp_dir.h"

namespace nccl_moe::launcher {

class MpsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct MpsSettings {
  EnvironmentBlock inherited;            // the launcher's environment
  bool overrideEnvironment = false;      // ignore the user's CUDA_MPS_* directories
  std::optional<std::string> outputDir;  // the daemon's log goes to <dir>/mps-log when set
  int messageFd = 2;
};

class MpsDaemon {
 public:
  // Throws MpsError when the control program is missing or `-d` fails.
  MpsDaemon(const MpsSettings& settings, SignalPipe& signals);
  ~MpsDaemon();  // `echo quit | control`, with a time limit; failures are reported, not thrown
  MpsDaemon(const MpsDaemon&) = delete;
  MpsDaemon& operator=(const MpsDaemon&) = delete;

  // CUDA_MPS_PIPE_DIRECTORY and CUDA_MPS_LOG_DIRECTORY, for the ranks.
  const std::map<std::string, std::string>& rankVariables() const { return variables_; }

 private:
  std::string controlProgram_;
  EnvironmentBlock environment_;
  std::map<std::string, std::string> variables_;
  std::unique_ptr<TempDir> directory_;
  SignalPipe& signals_;
  int messageFd_;
};

}  // namespace nccl_moe::launcher
