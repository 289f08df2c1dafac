// Host entry points of the layout, dispatch and combine kernels, one domain and two-hop. Each
// enqueues on `stream` and returns the launch's CUDA error; cross-rank failures (timeouts) land in
// the DomainView's error record.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/kernel_args.h"
#include "nccl_moe.h"
#include "plan/moe_shape.h"

namespace nccl_moe {

// The launchers take the caller's public argument structs as given (checked by core/call_checks:
// the kernels read their device pointers and counts, never the size/magic/version header), each
// extended by what only the communicator or the handle knows.

// This rank's routing as the layout reads it (device pointers); its format is read as a RoutingFormat.
static_assert(static_cast<int>(RoutingFormat::kTopk) == NCCL_MOE_ROUTING_TOPK &&
                  static_cast<int>(RoutingFormat::kMap) == NCCL_MOE_ROUTING_MAP,
              "ncclMoeRouting_t.format must equal its RoutingFormat");
struct LayoutInput : ncclMoeRouting_t {
  int blocking = 1;  // no row budget: the host reads the counts before dispatch and combine
};

struct LaunchBudget {
  int maxBlocks = 1;  // the SM budget
};

// Blocks for `units` work items of which one block takes `unitsPerBlock`, within the budget.
inline int cappedGrid(int64_t units, int64_t unitsPerBlock, LaunchBudget budget) {
  const int64_t wanted = (units + unitsPerBlock - 1) / unitsPerBlock;
  return static_cast<int>(wanted < 1 ? 1 : wanted < budget.maxBlocks ? wanted : budget.maxBlocks);
}

// Dynamic shared memory of a kernel; above the default 48 KiB the kernel must opt in first.
template <class Kernel>
cudaError_t allowSharedBytes(Kernel kernel, size_t bytes) {
  constexpr size_t kDefaultLimit = 48 * 1024;
  if (bytes <= kDefaultLimit) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
}

// Tokens per chunk of the layout's receive-side scans: HandleDevice::scanCounts holds one count per
// chunk of every scanned item.
constexpr int kLayoutScanChunk = 256;

// The layout in two parts: publish this rank's routing (checked, normalised) into its meta slot;
// then count, scan and fill the handle. With several domains the meta exchange over the network
// goes between the two. faultKey: device scratch of one uint64 (initialised to ~0).
cudaError_t launchLayoutPublish(const DomainView& view, const GroupDims& dims, const LayoutInput& input,
                                const HandleDevice& handle, uint64_t* faultKey, LaunchBudget budget,
                                cudaStream_t stream);
cudaError_t launchLayoutScan(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                             LaunchBudget budget, cudaStream_t stream);

// The count-first engine's two parts (kernels/layout_count_first.cu; NCCL_MOE_LAYOUT_ENGINE=1), in
// place of the two above: the same handle, from counts and per-source positions instead of scans.
cudaError_t launchCountFirstPublish(const DomainView& view, const GroupDims& dims, const LayoutInput& input,
                                    const HandleDevice& handle, uint64_t* faultKey, LaunchBudget budget,
                                    cudaStream_t stream);
cudaError_t launchCountFirstScan(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                                 LaunchBudget budget, cudaStream_t stream);
// Both in one kernel (NCCL_MOE_LAYOUT_ENGINE=2), for one NVLink domain only: with several the meta
// crosses the network between the two.
cudaError_t launchCountFirstFused(const DomainView& view, const GroupDims& dims, const LayoutInput& input,
                                  const HandleDevice& handle, uint64_t* faultKey, LaunchBudget budget,
                                  cudaStream_t stream);

struct DispatchOutputs : ncclMoeDispatchArgs_t {
  int topk = 0;           // K of the per-rank recvTopkIdx/recvProbs rows (the handle's routing)
  int xInBuffer = 0;      // x is this rank's staging area (zero-copy): nothing to stage
  int releaseInputs = 0;  // end only when the domain peers have read this rank's staging area
};

cudaError_t launchDispatch(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                           const DispatchOutputs& outputs, LaunchBudget budget, cudaStream_t stream);

// Two-hop dispatch: stage (own rows + network packs, then the direct rows are announced); pull the
// rows of this domain's ranks (networkChunk = kDirectRows, beside the network groups) or, after
// network chunk c has landed, the rows that came in it (networkChunk = c; the last chunk, c =
// view.netChunks - 1, closes the call).
constexpr int kDirectRows = -1;
cudaError_t launchHybridDispatchStage(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                                      const DispatchOutputs& outputs, LaunchBudget budget, cudaStream_t stream);
cudaError_t launchHybridDispatchPull(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                                     const DispatchOutputs& outputs, int networkChunk, LaunchBudget budget,
                                     cudaStream_t stream);

struct CombineBuffers : ncclMoeCombineArgs_t {
  int topk = 0;            // K of the handle's routing (top-k format)
  int xInBuffer = 0;       // x is this rank's partials area (zero-copy, per-rank layout): no copy
  int releaseInputs = 0;   // end only when the domain peers have read this rank's partials
};

cudaError_t launchCombine(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                          const CombineBuffers& buffers, LaunchBudget budget, cudaStream_t stream);

// Two-hop combine: rank partials staged (chunk 0) and collected into domain partials, one launch
// per network chunk: chunk c writes the rows of the network send slots that chunk c carries (the
// rail peers' tokens), the last chunk also this rank's own tokens into its own domain's slot;
// after the last network chunk, every token sums its domain partials in domain order.
cudaError_t launchHybridCombineCollect(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                                       const CombineBuffers& buffers, int chunk, LaunchBudget budget,
                                       cudaStream_t stream);
cudaError_t launchHybridCombineReduce(const DomainView& view, const GroupDims& dims, const HandleDevice& handle,
                                      const CombineBuffers& buffers, LaunchBudget budget, cudaStream_t stream);

}  // namespace nccl_moe
