// Kernel launches (<<<...>>>) report a failure only through the CUDA runtime's per-thread "last
// error". This library links its own static CUDA runtime, so that state holds only what this
// library's own calls left there, and the application cannot clear it (its cudaGetLastError reads
// another runtime's). An earlier call of this library that failed, and returned that failure then,
// would otherwise have its error reported again by the next launch of any later call (seen: a
// layout whose launch into an invalidated graph capture failed made the layout redone on another
// stream fail with cudaErrorStreamCaptureInvalidated). Every launcher starts from a clean state;
// a sticky error is still reported, since the launch itself then fails with it.
#pragma once

#include <cuda_runtime.h>

namespace nccl_moe {

inline void discardEarlierLaunchError() { (void)cudaGetLastError(); }

}  // namespace nccl_moe
