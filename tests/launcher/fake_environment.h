// A launcher's variables for the bootstrap's readers, without touching the process environment.
#pragma once

#include <map>
#include <string>

#include "nccl_moe_bootstrap.h"
#include "tools/bootstrap/environment.h"

namespace nccl_moe::bootstrap {

struct FakeEnvironment {
  std::map<std::string, std::string> variables;

  // Valid while this object lives and its map is not changed.
  EnvironmentLookup lookup() const {
    return [this](const char* name) -> const char* {
      const auto found = variables.find(name);
      return found == variables.end() ? nullptr : found->second.c_str();
    };
  }
};

// The message of the BootstrapError `read` throws, or "no error".
template <class Read>
std::string bootstrapErrorOf(Read&& read) {
  try {
    read();
  } catch (const BootstrapError& error) {
    return error.what();
  }
  return "no error";
}

}  // namespace nccl_moe::bootstrap
