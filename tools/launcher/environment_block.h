// A process environment as name -> value, for building each rank's environment from the
// launcher's own.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nccl_moe::launcher {

class EnvironmentBlock {
 public:
  EnvironmentBlock() = default;
  static EnvironmentBlock fromProcess();  // a copy of this process's environ
  static EnvironmentBlock fromEntries(const std::vector<std::string>& nameEqualsValue);

  bool contains(const std::string& name) const { return variables_.count(name) != 0; }
  std::optional<std::string> get(const std::string& name) const;
  void set(const std::string& name, const std::string& value) { variables_[name] = value; }
  void erase(const std::string& name) { variables_.erase(name); }

  std::vector<std::string> entries() const;  // "NAME=value", sorted by name
  const std::map<std::string, std::string>& variables() const { return variables_; }

 private:
  std::map<std::string, std::string> variables_;
};

}  // namespace nccl_moe::launcher
