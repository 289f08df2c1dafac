// Text form of an ncclUniqueId for passing it through the environment: lowercase hex, two
// characters per byte, no separators (2 * NCCL_UNIQUE_ID_BYTES characters).
#pragma once

#include <nccl.h>

#include <string>
#include <string_view>

namespace nccl_moe {

std::string encodeUniqueIdHex(const ncclUniqueId& id);

// Throws std::invalid_argument naming the problem (length, or the first non-hex character).
ncclUniqueId decodeUniqueIdHex(std::string_view hex);

}  // namespace nccl_moe
