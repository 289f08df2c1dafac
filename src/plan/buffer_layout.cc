#include "plan/buffer_layout.h"

#include "misc/numerics.h"

namespace nccl_moe {

namespace {

size_t alignUp(size_t value, size_t alignment) { return (value + alignment - 1) / alignment * alignment; }

}  // namespace

BufferLayout bufferLayoutOf(const GroupDims& dims, int signalPhases, int ranks, int domainRanks, int domains) {
  const size_t tokens = static_cast<size_t>(dims.maxTokens);
  const size_t rowBytes = static_cast<size_t>(dims.hidden) * elementBytes(static_cast<ElementType>(dims.rowType));
  const size_t stagedRowBytes = dims.fp8 ? static_cast<size_t>(dims.hidden) : rowBytes;
  const size_t scaleBytes = dims.fp8 ? static_cast<size_t>(fp8BlockCount(dims.hidden)) * sizeof(float) : 0;
  const size_t pairs = static_cast<size_t>(ranks) * tokens;
  BufferLayout layout;
  size_t offset = 0;
  auto region = [&](size_t bytes) {
    const size_t at = offset;
    offset = alignUp(offset + bytes, kRegionAlignment);
    return at;
  };
  layout.signals = region(sizeof(uint64_t) * signalPhases * domainRanks);
  const size_t selections = tokens * dims.metaWidth;
  layout.metaPositions = alignUp(kMetaHeaderBytes + selections * kMetaSelectionBytes, 16);
  layout.metaCounts = alignUp(layout.metaPositions + selections * kMetaPositionBytes, 16);
  const size_t counters = static_cast<size_t>(ranks) + static_cast<size_t>(dims.experts) + static_cast<size_t>(domains);
  layout.metaSlotBytes = alignUp(layout.metaCounts + counters * sizeof(int32_t), kRegionAlignment);
  layout.meta = region(layout.metaSlotBytes * domains);
  layout.dispatchRows = region(tokens * stagedRowBytes);
  layout.dispatchScales = region(tokens * scaleBytes);
  // A windowed combine's landing area: two windows of combineWindow tokens per source rank.
  const bool windowed = dims.combineWindow > 0 && dims.combineWindow < dims.maxTokens;
  const size_t landingTokens = windowed ? 2 * static_cast<size_t>(dims.combineWindow) : tokens;
  layout.combineRows = region(static_cast<size_t>(ranks) * landingTokens * rowBytes);
  layout.combineProbs = region(pairs * dims.metaWidth * sizeof(float));
  if (domains > 1) {
    layout.netDispatchScaleOffset = alignUp(stagedRowBytes, 16);
    layout.netDispatchRowBytes = layout.netDispatchScaleOffset + alignUp(scaleBytes, 16);
    layout.netCombineGradOffset = alignUp(rowBytes, 16);
    layout.netCombineRowBytes = layout.netCombineGradOffset + alignUp(dims.metaWidth * sizeof(float), 16);
    layout.netSlotRows = tokens;
    const size_t others = static_cast<size_t>(domains - 1);
    layout.netDispatchSend = region(others * tokens * layout.netDispatchRowBytes);
    layout.netDispatchRecv = region(others * tokens * layout.netDispatchRowBytes);
    layout.netCombineSend = region(others * tokens * layout.netCombineRowBytes);
    layout.netCombineRecv = region(static_cast<size_t>(domains) * tokens * layout.netCombineRowBytes);
  }
  layout.total = offset;
  return layout;
}

int64_t networkStagingBytes(const GroupDims& dims, int ranks, int domains) {
  if (domains <= 1) return 0;
  // Only the network regions and the meta slots depend on the domains (the signals depend on the
  // ranks per domain, the rest on the ranks): what follows the one-domain regions, plus the meta
  // slots of the other domains.
  const BufferLayout layout = bufferLayoutOf(dims, /*signalPhases=*/0, ranks, 1, domains);
  return static_cast<int64_t>(layout.total - layout.netDispatchSend) +
         static_cast<int64_t>((domains - 1) * layout.metaSlotBytes);
}

}  // namespace nccl_moe
