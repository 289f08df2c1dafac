// The Status of an NCCL call (kept apart from status.h: this one links NCCL's library).
#pragma once

#include <nccl.h>

#include "misc/nccl_symbols.h"
#include "misc/status.h"

namespace nccl_moe {

// ok, or the call's code with NCCL's own words: its error string and its last error.
Status ncclStatus(ncclResult_t result, const char* what);

}  // namespace nccl_moe
