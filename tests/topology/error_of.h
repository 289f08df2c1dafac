// The message of the topo::Error an action throws, or "(no error)": the topology tests compare
// input-error messages word for word.
#pragma once

#include <functional>
#include <string>

#include "topology/error.h"

namespace nccl_moe::topo::test {

inline std::string errorOf(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

}  // namespace nccl_moe::topo::test
