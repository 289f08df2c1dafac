// The one error type of the topology library: a message that says what is wrong and where
// (file, line, JSON path or field). Topology code runs at set-up time, so it throws; callers in
// the library's C API catch topo::Error at the boundary and turn it into an ncclResult_t.
#pragma once

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

}  // namespace nccl_moe::topo
