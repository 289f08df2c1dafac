// What nccl-moe-run tells each rank program, read back from the environment:
//   NCCL_MOE_RANK, NCCL_MOE_NRANKS      this rank and the number of ranks
//   NCCL_MOE_LOCAL_RANK                 index inside its NVLink domain (virtual node)
//   NCCL_MOE_DOMAIN_SIZE                ranks per NVLink domain
//   NCCL_MOE_UNIQUE_ID                  the job's ncclUniqueId in hex (unique_id_hex.h)
// A rank program passes uniqueId, nranks and rank to ncclCommInitRank.
#pragma once

#include <nccl.h>

#include <functional>
#include <stdexcept>
#include <string>

namespace nccl_moe {

struct RankEnvironment {
  int rank = 0;
  int nranks = 0;
  int localRank = 0;
  int domainSize = 0;
  ncclUniqueId uniqueId{};

  int domainIndex() const { return rank / domainSize; }
  int domainCount() const { return nranks / domainSize; }
};

class RankEnvironmentError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Returns the value of a variable, or nullptr when it is unset (getenv's contract).
using EnvironmentLookup = std::function<const char*(const char* name)>;

// True when NCCL_MOE_RANK is set: the program was started by nccl-moe-run.
bool launchedByNcclMoeRun();

// Reads and cross-checks all five variables from the process environment (or from `lookup`).
// Throws RankEnvironmentError naming the variable and what is wrong with it.
RankEnvironment readRankEnvironment();
RankEnvironment readRankEnvironment(const EnvironmentLookup& lookup);

}  // namespace nccl_moe
