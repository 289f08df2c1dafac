// Reads the call counters of a fake tuner module that is already loaded (same handle as the one
// the code under test opened).
#pragma once

#include <dlfcn.h>

#include <string>

namespace nccl_moe::testing_support {

inline int fakeTunerCounter(const char* modulePath, const char* counter) {
  void* handle = dlopen(modulePath, RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return -1;
  const auto* value = static_cast<const int*>(dlsym(handle, counter));
  const int result = value != nullptr ? *value : -1;
  dlclose(handle);
  return result;
}

inline unsigned long long fakeTunerLastCommId(const char* modulePath) {
  void* handle = dlopen(modulePath, RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return 0;
  const auto* value = static_cast<const unsigned long long*>(dlsym(handle, "fakeTunerLastCommId"));
  const unsigned long long result = value != nullptr ? *value : 0;
  dlclose(handle);
  return result;
}

}  // namespace nccl_moe::testing_support
