// Process-wide registry of the NCCL communicators the tuner was initialised for, so that the MoE
// API (in the same library, hence the same registry however the library was loaded) can reuse
// what NCCL told the tuner about a communicator: ranks, nodes, NVLink domains.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace nccl_moe {

struct CommRecord {
  uint64_t key = 0;         // registry key, unique in the process
  bool hasNcclId = false;   // tuner v5+ passes NCCL's communicator hash
  uint64_t ncclCommId = 0;
  size_t ranks = 0;
  size_t nodes = 0;
  int nvlDomains = 0;
  int minRanksPerDomain = 0;
  int maxRanksPerDomain = 0;
  int channelCap = 0;       // 0: none
};

class CommRegistry {
 public:
  // Stores `record` under a fresh key and returns the key.
  uint64_t add(CommRecord record);
  bool remove(uint64_t key);
  std::optional<CommRecord> findByNcclId(uint64_t ncclCommId) const;
  std::vector<CommRecord> snapshot() const;
  size_t size() const;

 private:
  mutable std::mutex mutex_;
  uint64_t nextKey_ = 1;
  std::unordered_map<uint64_t, CommRecord> records_;
};

// The one registry of this process.
CommRegistry& commRegistry();

}  // namespace nccl_moe
