// What a kernel sees of its NVLink domain and of the cross-rank protocol: the peers' buffers, the
// error records, the device epochs and the chunk signals. Plain structs shared by the host code of
// the transport and by every kernel (passed by value).
#pragma once

#include <cstddef>
#include <cstdint>

#include "misc/numerics.h"
#include "transport/protocol.h"

namespace nccl_moe {

// Per-communicator counters on the device, so that a captured CUDA graph replays with fresh
// epochs: a call runs with epoch current + 1, and its last kernel stores that into `current`.
struct DeviceEpochs {
  uint64_t current;
  uint64_t lastMeta;      // epoch of the last layout (whose meta peers read)
  uint64_t lastRows;      // epoch of the last dispatch
  uint64_t lastPartials;  // epoch of the last combine
  uint32_t blocksDone;    // last-block detection inside one kernel
  uint32_t pad;
  uint32_t windowBlocks[2];  // windowed combine: blocks past "staged" / "read" of each window so far
};

// What a kernel sees of the EP group: its global rank, and the NVLink domain of D consecutive
// ranks it shares memory with (one domain: localRank == rank, localRanks == ranks).
struct DomainView {
  int rank = 0;        // global
  int ranks = 0;       // global
  int localRank = 0;   // index inside the domain
  int localRanks = 0;  // D
  int domain = 0;
  int domains = 1;
  uint8_t* const* peerBuffers = nullptr;  // [localRanks] device pointers to the domain's buffers
  BufferLayout layout;
  ErrorRecord* error = nullptr;      // device memory: the first failure of this rank
  ErrorRecord* errorHost = nullptr;  // host-mapped mirror the host reads without a sync
  // Two hops: the host's network watchdog may record a failure in errorHost before any kernel
  // does, so waits read it too (a read over PCIe). With one domain only kernels write it (after
  // the device record), and kernels never read it.
  bool hostRecordsFailures = false;
  uint64_t timeoutNs = 0;
  DeviceEpochs* epochs = nullptr;
  // Two-hop: each dispatch and combine moves its network slots in netChunks transfers of
  // netChunkRows rows (the last may hold fewer), so that NVLink work overlaps the network.
  int netChunks = 1;
  int netChunkRows = 0;

  // Slot of another domain n in this rank's network regions, which hold none for its own domain.
  NCCL_MOE_HD size_t otherDomainSlot(int n) const { return static_cast<size_t>(n < domain ? n : n - 1); }
};

// The value a chunked network phase signals for chunk `chunk` of the call with `epoch`.
NCCL_MOE_HD uint64_t chunkSignal(uint64_t epoch, int chunk) {
  return epoch * static_cast<uint64_t>(kMaxNetworkChunks) + static_cast<uint64_t>(chunk) + 1;
}

// The value the windowed combine signals for window `window` of the call with `epoch` (grows over
// the windows of a call and over calls: window < 2^24 since maxTokensPerRank <= 2^24).
NCCL_MOE_HD uint64_t windowSignal(uint64_t epoch, int window) {
  return (epoch << 24) + static_cast<uint64_t>(window) + 1;
}

// Which window a value of windowSignal names (for messages).
NCCL_MOE_HD int windowOfSignal(uint64_t value) {
  return value == 0 ? -1 : static_cast<int>((value - 1) & ((uint64_t{1} << 24) - 1));
}

// Which chunk a value of chunkSignal names (for messages).
NCCL_MOE_HD int chunkOfSignal(uint64_t value) {
  return value == 0 ? -1 : static_cast<int>((value - 1) % static_cast<uint64_t>(kMaxNetworkChunks));
}

}  // namespace nccl_moe
