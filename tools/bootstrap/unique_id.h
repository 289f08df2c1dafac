// Making an ncclUniqueId, behind a function type so tests and the store can use any maker.
#pragma once

#include <nccl.h>

#include <functional>

namespace nccl_moe::bootstrap {

using IdMaker = std::function<ncclUniqueId()>;

// ncclGetUniqueId; throws BootstrapError with NCCL's message when it fails.
ncclUniqueId createUniqueId();

}  // namespace nccl_moe::bootstrap
