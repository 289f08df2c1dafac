// nccl-moe-run's command line: what to start and how to supervise it.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace nccl_moe::launcher {

// Which ranks share an NCCL_HOSTID (NCCL treats ranks with one host id as one node).
enum class HostIdMode {
  kAuto,       // one per rank when ranks share a GPU, otherwise leave NCCL_HOSTID alone
  kPerRank,    // one per rank: NCCL sees every rank as its own node
  kPerDomain,  // one per NVLink domain: NCCL sees the virtual nodes as nodes
  kNone,       // never set NCCL_HOSTID
};

struct LaunchOptions {
  int ranks = 0;
  std::optional<int> domainSize;  // from --domain-size, or -np / --nodes
  std::optional<int> gpus;
  bool mps = false;
  std::optional<double> timeoutSeconds;
  double failGraceSeconds = 30;
  double killGraceSeconds = 10;
  std::optional<std::string> outputDir;
  HostIdMode hostIdMode = HostIdMode::kAuto;
  bool overrideEnvironment = false;
  bool help = false;
  bool version = false;  // --version: print the library's and NCCL's versions
  std::vector<std::string> program;  // the program and its arguments
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `arguments` excludes argv[0]. Throws UsageError saying which argument is wrong and why.
LaunchOptions parseLaunchOptions(const std::vector<std::string>& arguments);

std::string usageText();

}  // namespace nccl_moe::launcher
