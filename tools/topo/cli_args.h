// Command-line arguments of one nccl-moe-topo command: positionals, flags and valued options,
// checked against what the command accepts so that a typo is an error, not a silent default.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace nccl_moe::topo::cli {

// Thrown for usage errors (exit code 2); the message names the command and the argument.
struct UsageError {
  std::string message;
};

struct OptionSpec {
  std::set<std::string> flags;   // e.g. "--json"
  std::set<std::string> valued;  // e.g. "--preset" (takes the next argument, or --preset=x)
  size_t maxPositionals = 0;
};

class Args {
 public:
  Args(const std::string& command, const std::vector<std::string>& argv, const OptionSpec& spec);

  bool flag(const std::string& name) const { return flags_.count(name) != 0; }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::optional<std::string> value(const std::string& name) const;
  std::string value(const std::string& name, const std::string& fallback) const;
  // Whole numbers in [min, max]; a usage error names the option otherwise.
  long long integer(const std::string& name, long long fallback, long long min, long long max) const;
  double number(const std::string& name, double fallback, double min) const;
  const std::vector<std::string>& positionals() const { return positionals_; }

  [[noreturn]] void usageError(const std::string& message) const;

 private:
  std::string command_;
  std::set<std::string> flags_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positionals_;
};

}  // namespace nccl_moe::topo::cli
