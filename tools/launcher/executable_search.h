// Finds a program the way execvp would, but before forking, so that a missing program is one
// clear error instead of N failed ranks.
#pragma once

#include <optional>
#include <string>

namespace nccl_moe::launcher {

// `name` containing '/' is taken as a path; otherwise each directory of `searchPath` (a PATH
// value, ':'-separated, empty entries meaning ".") is tried. Returns the first executable file.
std::optional<std::string> findExecutable(const std::string& name, const std::string& searchPath);

}  // namespace nccl_moe::launcher
