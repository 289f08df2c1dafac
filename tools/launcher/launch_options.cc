#include "launch_options.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace nccl_moe::launcher {
namespace {

constexpr int kMaxRanks = 65536;

int parseCount(const std::string& option, const std::string& text, int lowest) {
  const auto bad = [&] {
    return UsageError(option + " expects an integer >= " + std::to_string(lowest) + ", got '" +
                      text + "'");
  };
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) throw bad();
  errno = 0;
  const long long value = std::strtoll(text.c_str(), nullptr, 10);
  if (errno == ERANGE || value < lowest || value > kMaxRanks) {
    if (value > kMaxRanks) {
      throw UsageError(option + " " + text + " is larger than " + std::to_string(kMaxRanks));
    }
    throw bad();
  }
  return static_cast<int>(value);
}

double parseSeconds(const std::string& option, const std::string& text, bool zeroAllowed) {
  const auto bad = [&] {
    return UsageError(option + " expects seconds (a number " +
                      std::string(zeroAllowed ? ">= 0" : "> 0") + "), got '" + text + "'");
  };
  if (text.empty()) throw bad();
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (errno == ERANGE || *end != '\0' || !std::isfinite(value) || value < 0 ||
      (value == 0 && !zeroAllowed)) {
    throw bad();
  }
  return value;
}

HostIdMode parseHostIdMode(const std::string& text) {
  if (text == "auto") return HostIdMode::kAuto;
  if (text == "rank") return HostIdMode::kPerRank;
  if (text == "domain") return HostIdMode::kPerDomain;
  if (text == "none") return HostIdMode::kNone;
  throw UsageError("--hostid expects auto, rank, domain or none, got '" + text + "'");
}

bool takesValue(const std::string& name) {
  for (const char* option : {"-np", "-n", "--np", "--domain-size", "--nodes", "--gpus", "--timeout",
                             "--fail-grace", "--kill-grace", "--output-dir", "--hostid"}) {
    if (name == option) return true;
  }
  return false;
}

}  // namespace

LaunchOptions parseLaunchOptions(const std::vector<std::string>& arguments) {
  LaunchOptions options;
  std::optional<int> nodes;
  bool ranksGiven = false;
  size_t index = 0;
  while (index < arguments.size()) {
    const std::string& argument = arguments[index];
    if (argument == "--") {
      ++index;
      break;
    }
    if (argument.empty() || argument[0] != '-') break;  // the program starts here

    std::string name = argument;
    std::optional<std::string> value;
    if (const size_t equals = argument.find('='); argument.rfind("--", 0) == 0 &&
                                                  equals != std::string::npos) {
      name = argument.substr(0, equals);
      value = argument.substr(equals + 1);
    }
    ++index;
    if (takesValue(name) && !value) {
      if (index == arguments.size()) throw UsageError(name + " needs a value");
      value = arguments[index++];
    } else if (!takesValue(name) && value) {
      throw UsageError(name + " takes no value, got '" + argument + "'");
    }

    if (name == "-np" || name == "-n" || name == "--np") {
      options.ranks = parseCount(name, *value, 1);
      ranksGiven = true;
    } else if (name == "--domain-size") {
      options.domainSize = parseCount(name, *value, 1);
    } else if (name == "--nodes") {
      nodes = parseCount(name, *value, 1);
    } else if (name == "--gpus") {
      options.gpus = parseCount(name, *value, 0);
    } else if (name == "--timeout") {
      options.timeoutSeconds = parseSeconds(name, *value, false);
    } else if (name == "--fail-grace") {
      options.failGraceSeconds = parseSeconds(name, *value, true);
    } else if (name == "--kill-grace") {
      options.killGraceSeconds = parseSeconds(name, *value, true);
    } else if (name == "--output-dir") {
      if (value->empty()) throw UsageError("--output-dir needs a non-empty directory name");
      options.outputDir = *value;
    } else if (name == "--hostid") {
      options.hostIdMode = parseHostIdMode(*value);
    } else if (name == "--mps") {
      options.mps = true;
    } else if (name == "--override-env") {
      options.overrideEnvironment = true;
    } else if (name == "-h" || name == "--help") {
      options.help = true;
    } else if (name == "--version") {
      options.version = true;
    } else {
      throw UsageError("unknown option '" + argument + "'");
    }
  }
  options.program.assign(arguments.begin() + static_cast<std::ptrdiff_t>(index), arguments.end());
  if (options.help || options.version) return options;

  if (!ranksGiven) throw UsageError("-np N is required (the number of ranks to start)");
  if (options.program.empty()) throw UsageError("no program given to run on each rank");
  if (options.domainSize && nodes) {
    throw UsageError("--domain-size and --nodes both set the NVLink domain size; give one");
  }
  if (nodes) {
    if (options.ranks % *nodes != 0) {
      throw UsageError("--nodes " + std::to_string(*nodes) + " does not divide -np " +
                       std::to_string(options.ranks));
    }
    options.domainSize = options.ranks / *nodes;
  }
  if (options.domainSize && options.ranks % *options.domainSize != 0) {
    throw UsageError("--domain-size " + std::to_string(*options.domainSize) +
                     " does not divide -np " + std::to_string(options.ranks));
  }
  return options;
}

std::string usageText() {
  return R"(Usage: nccl-moe-run -np N [options] [--] program [args...]

Starts N ranks of `program` on this machine as a virtual cluster: one NCCL unique id for all,
ranks grouped into NVLink domains (virtual nodes), output collected, every rank supervised.

Options:
  -np N, -n N            number of ranks (required)
  --domain-size D        ranks per NVLink domain (virtual node); must divide N.
                         Default: NCCL_MOE_DOMAIN_SIZE from the environment, else N
  --nodes M              M NVLink domains of N/M ranks (alternative to --domain-size)
  --gpus G               GPUs to spread ranks over: rank r sees only GPU r % G.
                         Default: the GPUs CUDA reports (0: leave CUDA_VISIBLE_DEVICES alone)
  --mps                  start a private CUDA MPS daemon for the job, stop it afterwards
                         (control program: NCCL_MOE_MPS_CONTROL, else nvidia-cuda-mps-control)
  --timeout SEC          stop all ranks after SEC seconds and fail (exit code 124)
  --fail-grace SEC       after a rank fails, stop the others after SEC seconds (default 30)
  --kill-grace SEC       SIGTERM to SIGKILL delay when stopping ranks (default 10)
  --output-dir DIR       also write each rank's output to DIR/rank-<r>.log
  --hostid MODE          NCCL_HOSTID per rank: auto (distinct per rank when ranks share a
                         GPU), rank, domain, none (default auto)
  --override-env         replace inherited CUDA_VISIBLE_DEVICES, NCCL_HOSTID, MASTER_ADDR,
                         MASTER_PORT, CUDA_MPS_* instead of keeping them
  -h, --help             this text
  --version              the nccl-moe and NCCL versions

Each rank gets NCCL_MOE_RANK, NCCL_MOE_NRANKS, NCCL_MOE_LOCAL_RANK, NCCL_MOE_DOMAIN_SIZE,
NCCL_MOE_UNIQUE_ID (hex ncclUniqueId), NCCL_MOE_DEVICE=0, RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, and NCCL_NVLS_ENABLE=0 unless set. Rank programs
read them with the rank bootstrap (nccl_moe_bootstrap.h; docs/launching.md). Output lines are printed as
"[rank r] line"; a summary table goes to stderr at the end.

Exit code: 0 when every rank exits 0; otherwise the first failing rank's exit code (128 + signal
number when it was killed), 124 on --timeout, 128 + signal when the launcher was interrupted,
2 for usage errors, 1 when the launcher itself failed.
)";
}

}  // namespace nccl_moe::launcher
