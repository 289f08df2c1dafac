// Sets (or unsets) environment variables for one scope and restores what was there before.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nccl_moe::testing_support {

class ScopedEnv {
 public:
  ScopedEnv() = default;
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) setenv(it->first.c_str(), it->second->c_str(), 1);
      else unsetenv(it->first.c_str());
    }
  }

  ScopedEnv& set(const std::string& name, const std::string& value) {
    save(name);
    setenv(name.c_str(), value.c_str(), 1);
    return *this;
  }
  ScopedEnv& unset(const std::string& name) {
    save(name);
    unsetenv(name.c_str());
    return *this;
  }

 private:
  void save(const std::string& name) {
    const char* old = std::getenv(name.c_str());
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
  }

  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// Every variable the tuner reads, unset: a test starts from the defaults.
inline void clearTunerEnvironment(ScopedEnv& env) {
  for (const char* name : {"NCCL_MOE_NCCL_MAX_CHANNELS", "NCCL_MOE_OVERLAP_NCCL", "NCCL_MOE_DISPATCH_SMS",
                           "NCCL_MOE_COMBINE_SMS", "NCCL_MOE_CHAIN_TUNER", "FAKE_TUNER_FAIL",
                           "FAKE_TUNER_CHANNELS"}) {
    env.unset(name);
  }
}

}  // namespace nccl_moe::testing_support
