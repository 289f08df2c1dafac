// A TCP port on 127.0.0.1 that nobody listened on a moment ago (for MASTER_PORT).
#pragma once

namespace nccl_moe::launcher {

int findFreePort();  // throws std::system_error

}  // namespace nccl_moe::launcher
