// Process-wide set of live objects of one kind, so that an API call can tell a live handle from a
// destroyed or foreign pointer without dereferencing it.
#pragma once

#include <mutex>
#include <unordered_set>

namespace nccl_moe {

template <class T>
class LiveSet {
 public:
  void add(const T* object) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.insert(object);
  }
  bool remove(const T* object) {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_.erase(object) == 1;
  }
  bool contains(const T* object) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_.count(object) == 1;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_set<const T*> live_;
};

}  // namespace nccl_moe
