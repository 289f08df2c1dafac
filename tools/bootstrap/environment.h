// Reading launcher variables strictly: a value that is set must parse, or the error names the
// variable and what is wrong with it (never a silent default that puts a rank in the wrong job).
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace nccl_moe::bootstrap {

// Returns a variable's value, or nullptr when it is unset (getenv's contract). Tests pass a map.
using EnvironmentLookup = std::function<const char*(const char* name)>;

const char* processEnvironment(const char* name);

std::optional<std::string> readText(const EnvironmentLookup& lookup, const char* name);

// A whole decimal number in [lowest, highest]; nullopt when unset. Throws BootstrapError
// "NAME='text' is not an integer >= lowest" (or "in [lowest, highest]").
std::optional<int> readInt(const EnvironmentLookup& lookup, const char* name, int lowest,
                           int highest = 2147483647);

// The same for text that did not come from one variable alone (an entry of a list).
int parseInt(const std::string& text, int lowest, int highest, const std::string& what);

}  // namespace nccl_moe::bootstrap
