// The top level of a tool's main(): runs its body and turns what escapes into the tools' exit
// statuses, each with one line "<program>: <message>" on stderr:
//   UsageError (a bad flag or environment, found before any work)  2
//   std::bad_alloc (out of host memory)                              1, with the program's hint
//   any other std::exception                                         1
#pragma once

#include <functional>
#include <string>

namespace nccl_moe::tools {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// `memoryHint` follows the out-of-memory message ("lower --tokens or --hidden"); may be empty.
int runToolMain(const std::string& program, const std::function<int()>& body, const std::string& memoryHint = "");

}  // namespace nccl_moe::tools
