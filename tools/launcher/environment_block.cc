#include "environment_block.h"

#include <unistd.h>

namespace nccl_moe::launcher {

EnvironmentBlock EnvironmentBlock::fromProcess() {
  std::vector<std::string> entries;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    entries.emplace_back(*entry);
  }
  return fromEntries(entries);
}

EnvironmentBlock EnvironmentBlock::fromEntries(const std::vector<std::string>& nameEqualsValue) {
  EnvironmentBlock block;
  for (const std::string& entry : nameEqualsValue) {
    const size_t equals = entry.find('=');
    if (equals == std::string::npos || equals == 0) continue;  // not a variable
    block.variables_.emplace(entry.substr(0, equals), entry.substr(equals + 1));
  }
  return block;
}

std::optional<std::string> EnvironmentBlock::get(const std::string& name) const {
  const auto found = variables_.find(name);
  if (found == variables_.end()) return std::nullopt;
  return found->second;
}

std::vector<std::string> EnvironmentBlock::entries() const {
  std::vector<std::string> result;
  result.reserve(variables_.size());
  for (const auto& [name, value] : variables_) result.push_back(name + "=" + value);
  return result;
}

}  // namespace nccl_moe::launcher
