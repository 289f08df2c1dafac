// The tuner itself, behind every exported ABI version: per-communicator context, channel cap,
// registry entry, init summary, forwarding to a chained tuner. Every function returns ncclSuccess
// (NCCL fails the communicator on anything else): a failure inside is logged and the call leaves
// NCCL's own choices in place.
#pragma once

#include <cstddef>

#include "tuner_calls.h"

namespace nccl_moe {

// *context is nullptr when init failed; the other calls accept that and do nothing.
ncclResult_t tunerInit(const InitCall& call, void** context) noexcept;
// Writes *nChannels only when capping or forwarding a chained tuner's answer; the cost table may
// be changed only by a chained tuner.
ncclResult_t tunerGetCollInfo(void* context, const CollCall& call, int* nChannels) noexcept;
ncclResult_t tunerGetChunkSize(void* context, int collType, size_t nBytes, int algorithm,
                               int protocol, int nChannels, size_t* chunkSize) noexcept;
ncclResult_t tunerFinalize(void* context) noexcept;

}  // namespace nccl_moe
