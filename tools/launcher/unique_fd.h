// Pipes for the launcher's children, on the shared descriptor owner (tools/bootstrap/unique_fd.h).
#pragma once

#include "tools/bootstrap/unique_fd.h"

namespace nccl_moe::launcher {

// A pipe whose both ends are close-on-exec (children get only the ends dup2'ed onto 0/1/2).
struct Pipe {
  UniqueFd read;
  UniqueFd write;
};
Pipe makePipe();  // throws std::system_error

void setNonBlocking(int fd);  // throws std::system_error

}  // namespace nccl_moe::launcher
