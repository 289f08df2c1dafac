#include "tools/common/tool_main.h"

#include <cstdio>
#include <new>
#include <stdexcept>

#include "tools/common/flags.h"

namespace nccl_moe::tools {

int runToolMain(const std::string& program, const std::function<int()>& body, const std::string& memoryHint) {
  try {
    return body();
  } catch (const UsageError& error) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), error.what());
    return kExitUsage;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of host memory (an allocation failed)%s%s\n", program.c_str(),
                 memoryHint.empty() ? "" : "; ", memoryHint.c_str());
    return kExitFailure;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), error.what());
    return kExitFailure;
  }
}

}  // namespace nccl_moe::tools
