#include "tools/bootstrap/environment.h"

#include <cerrno>
#include <cstdlib>

#include "nccl_moe_bootstrap.h"

namespace nccl_moe::bootstrap {

const char* processEnvironment(const char* name) { return std::getenv(name); }

std::optional<std::string> readText(const EnvironmentLookup& lookup, const char* name) {
  const char* value = lookup(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

int parseInt(const std::string& text, int lowest, int highest, const std::string& what) {
  const std::string range = highest == 2147483647
                                ? ">= " + std::to_string(lowest)
                                : "in [" + std::to_string(lowest) + ", " + std::to_string(highest) + "]";
  const auto malformed = [&] { return BootstrapError(what + "='" + text + "' is not an integer " + range); };
  // Digits only: no sign, no spaces, no "0x"; a long run of digits cannot pass INT_MAX anyway.
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) {
    throw malformed();
  }
  errno = 0;
  const long long value = std::strtoll(text.c_str(), nullptr, 10);
  if (errno == ERANGE || value < lowest || value > highest) throw malformed();
  return static_cast<int>(value);
}

std::optional<int> readInt(const EnvironmentLookup& lookup, const char* name, int lowest, int highest) {
  const std::optional<std::string> text = readText(lookup, name);
  if (!text) return std::nullopt;
  return parseInt(*text, lowest, highest, name);
}

}  // namespace nccl_moe::bootstrap
