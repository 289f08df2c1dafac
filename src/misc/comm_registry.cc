#include "misc/comm_registry.h"

namespace nccl_moe {

uint64_t CommRegistry::add(CommRecord record) {
  std::lock_guard<std::mutex> lock(mutex_);
  record.key = nextKey_++;
  records_[record.key] = record;
  return record.key;
}

bool CommRegistry::remove(uint64_t key) {
  std::lock_guard<std::mutex> lock(mutex_);
  return records_.erase(key) == 1;
}

std::optional<CommRecord> CommRegistry::findByNcclId(uint64_t ncclCommId) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& entry : records_) {
    if (entry.second.hasNcclId && entry.second.ncclCommId == ncclCommId) return entry.second;
  }
  return std::nullopt;
}

std::vector<CommRecord> CommRegistry::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<CommRecord> out;
  out.reserve(records_.size());
  for (const auto& entry : records_) out.push_back(entry.second);
  return out;
}

size_t CommRegistry::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return records_.size();
}

CommRegistry& commRegistry() {
  // Leaked on purpose: NCCL may finalize communicators from its own atexit paths, after static
  // destructors would have run.
  static CommRegistry* registry = new CommRegistry;
  return *registry;
}

}  // namespace nccl_moe
