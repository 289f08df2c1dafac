// The one error type of the topology library: a message that says what is wrong and where
// (file, line, JSON path or field). Topology code runs at set-up time, so it throws; callers in
// the library's C API catch topo::Error at the boundary and turn it into an ncclResult_t.
#pragma once

#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace nccl_moe::topo {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Builds a message from streamable parts: fail("nodes[", i, "].gpus: expected an array").
template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  std::ostringstream message;
  (message << ... << std::forward<Parts>(parts));
  throw Error(message.str());
}

// Input quoted in a message, cut short: a hostile file must not turn its error message into a
// copy of itself (megabytes of garbage on a terminal, or in a log).
inline std::string excerpt(const std::string& text, size_t limit = 64) {
  if (text.size() <= limit) return text;
  return text.substr(0, limit) + "... (" + std::to_string(text.size()) + " bytes)";
}

// A double as people write it: 1000000, 0.5, 1e+300 (a stream's default gives 1e+06).
inline std::string numberText(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.15g", value);
  return text;
}

}  // namespace nccl_moe::topo
