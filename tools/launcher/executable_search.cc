#include "executable_search.h"

#include <sys/stat.h>
#include <unistd.h>

namespace nccl_moe::launcher {
namespace {

bool isExecutableFile(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
         ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

std::optional<std::string> findExecutable(const std::string& name, const std::string& searchPath) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) {
    return isExecutableFile(name) ? std::optional<std::string>(name) : std::nullopt;
  }
  size_t begin = 0;
  while (begin <= searchPath.size()) {
    size_t end = searchPath.find(':', begin);
    if (end == std::string::npos) end = searchPath.size();
    const std::string directory = end == begin ? "." : searchPath.substr(begin, end - begin);
    const std::string candidate = directory + "/" + name;
    if (isExecutableFile(candidate)) return candidate;
    begin = end + 1;
  }
  return std::nullopt;
}

}  // namespace nccl_moe::launcher
