#include "rank_env.h"

#include <cerrno>
#include <cstdlib>
#include <limits>

#include "unique_id_hex.h"

namespace nccl_moe {
namespace {

constexpr const char* kHowToLaunch = " (start rank programs with nccl-moe-run -np N ...)";

std::string requireVariable(const EnvironmentLookup& lookup, const char* name) {
  const char* value = lookup(name);
  if (value == nullptr) throw RankEnvironmentError(std::string(name) + " is not set" + kHowToLaunch);
  return value;
}

int readCount(const EnvironmentLookup& lookup, const char* name, int lowest) {
  const std::string text = requireVariable(lookup, name);
  const auto malformed = [&] {
    return RankEnvironmentError(std::string(name) + "='" + text + "' is not an integer >= " +
                                std::to_string(lowest));
  };
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) throw malformed();
  errno = 0;
  const long long value = std::strtoll(text.c_str(), nullptr, 10);
  if (errno == ERANGE || value > std::numeric_limits<int>::max() || value < lowest) {
    throw malformed();
  }
  return static_cast<int>(value);
}

}  // namespace

bool launchedByNcclMoeRun() { return std::getenv("NCCL_MOE_RANK") != nullptr; }

RankEnvironment readRankEnvironment() {
  return readRankEnvironment([](const char* name) { return std::getenv(name); });
}

RankEnvironment readRankEnvironment(const EnvironmentLookup& lookup) {
  RankEnvironment env;
  env.rank = readCount(lookup, "NCCL_MOE_RANK", 0);
  env.nranks = readCount(lookup, "NCCL_MOE_NRANKS", 1);
  env.localRank = readCount(lookup, "NCCL_MOE_LOCAL_RANK", 0);
  env.domainSize = readCount(lookup, "NCCL_MOE_DOMAIN_SIZE", 1);

  const std::string rank = std::to_string(env.rank);
  const std::string nranks = std::to_string(env.nranks);
  const std::string domainSize = std::to_string(env.domainSize);
  if (env.rank >= env.nranks) {
    throw RankEnvironmentError("NCCL_MOE_RANK=" + rank + " is not below NCCL_MOE_NRANKS=" + nranks);
  }
  if (env.nranks % env.domainSize != 0) {
    throw RankEnvironmentError("NCCL_MOE_NRANKS=" + nranks +
                               " is not a multiple of NCCL_MOE_DOMAIN_SIZE=" + domainSize);
  }
  if (env.localRank != env.rank % env.domainSize) {
    throw RankEnvironmentError("NCCL_MOE_LOCAL_RANK=" + std::to_string(env.localRank) +
                               " does not match NCCL_MOE_RANK=" + rank +
                               " modulo NCCL_MOE_DOMAIN_SIZE=" + domainSize);
  }

  const std::string hex = requireVariable(lookup, "NCCL_MOE_UNIQUE_ID");
  try {
    env.uniqueId = decodeUniqueIdHex(hex);
  } catch (const std::invalid_argument& error) {
    throw RankEnvironmentError(std::string("NCCL_MOE_UNIQUE_ID is malformed: ") + error.what());
  }
  return env;
}

}  // namespace nccl_moe
