#include "cli_args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace nccl_moe::topo::cli {

Args::Args(const std::string& command, const std::vector<std::string>& argv, const OptionSpec& spec)
    : command_(command) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg.size() > 1 && arg[0] == '-') {
      std::string name = arg, inlineValue;
      bool hasInline = false;
      size_t equals = arg.find('=');
      if (equals != std::string::npos) {
        name = arg.substr(0, equals);
        inlineValue = arg.substr(equals + 1);
        hasInline = true;
      }
      if (spec.flags.count(name) != 0 && !hasInline) {
        flags_.insert(name);
      } else if (spec.valued.count(name) != 0) {
        if (!hasInline) {
          if (i + 1 >= argv.size()) usageError(name + " needs a value");
          inlineValue = argv[++i];
        }
        if (values_.count(name) != 0) usageError(name + " is given twice");
        values_[name] = inlineValue;
      } else {
        usageError("unknown option '" + arg + "'");
      }
      continue;
    }
    if (positionals_.size() >= spec.maxPositionals) usageError("unexpected argument '" + arg + "'");
    positionals_.push_back(arg);
  }
}

std::optional<std::string> Args::value(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::value(const std::string& name, const std::string& fallback) const {
  return value(name).value_or(fallback);
}

long long Args::integer(const std::string& name, long long fallback, long long min, long long max) const {
  auto text = value(name);
  if (!text) return fallback;
  char* end = nullptr;
  errno = 0;
  long long number = std::strtoll(text->c_str(), &end, 10);
  if (text->empty() || *end != '\0' || errno != 0) usageError(name + " '" + *text + "' is not a whole number");
  if (number < min || number > max) {
    usageError(name + " " + *text + " is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return number;
}

double Args::number(const std::string& name, double fallback, double min) const {
  auto text = value(name);
  if (!text) return fallback;
  char* end = nullptr;
  double number = std::strtod(text->c_str(), &end);
  if (text->empty() || *end != '\0' || !std::isfinite(number)) usageError(name + " '" + *text + "' is not a number");
  if (number < min) usageError(name + " " + *text + " must be >= " + std::to_string(min));
  return number;
}

void Args::usageError(const std::string& message) const {
  throw UsageError{"nccl-moe-topo " + command_ + ": " + message + " (see nccl-moe-topo " + command_ + " --help)"};
}

}  // namespace nccl_moe::topo::cli
