// One device buffer per rank, mapped into every peer of the NVLink domain with CUDA IPC (works
// between processes on different GPUs with peer access and between processes sharing one GPU).
// IPC handles travel over the NCCL communicator.
#pragma once

#include <nccl.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "misc/cuda_memory.h"
#include "misc/status.h"

namespace nccl_moe {

class PeerBuffer {
 public:
  // Collective over `comm`: every rank publishes its handle; each maps the buffers of its domain,
  // the `domainRanks` ranks from `firstRank`. The buffer is zeroed before any peer can see it.
  static Status create(ncclComm_t comm, int rank, int ranks, int firstRank, int domainRanks, size_t bytes,
                       int timeoutMs, std::unique_ptr<PeerBuffer>* out);
  // create in two steps, for a resize: `allocate` (local: zeroed memory, not yet visible to any
  // peer), then `map` (collective over `comm`: publishes this buffer's handle and maps the domain's).
  // Every rank returns from `map` only after every rank entered it, so a rank that closed its
  // mappings of older buffers (closePeers) before may free them once `map` returned.
  static Status allocate(int rank, size_t bytes, std::unique_ptr<PeerBuffer>* out);
  Status map(ncclComm_t comm, int ranks, int firstRank, int domainRanks, int timeoutMs);
  // Unmaps the peers' buffers (this rank's own stays): no kernel of this rank may use them after.
  void closePeers();
  ~PeerBuffer();
  PeerBuffer(const PeerBuffer&) = delete;
  PeerBuffer& operator=(const PeerBuffer&) = delete;

  uint8_t* local() const { return local_.get(); }
  size_t bytes() const { return bytes_; }
  // Device array [domainRanks] of the domain's buffers as mapped here (this rank's own included).
  uint8_t* const* devicePeerTable() const { return peerTable_.get(); }

 private:
  PeerBuffer() = default;

  size_t bytes_ = 0;
  int rank_ = 0;
  DeviceMemory<uint8_t> local_;
  std::vector<uint8_t*> mapped_;  // peers' buffers opened here (nullptr for this rank)
  DeviceMemory<uint8_t*> peerTable_;
};

// Every rank's `bytes` bytes, gathered over NCCL (blocking; for set-up and teardown only). Gives up
// after `timeoutMs` with ncclRemoteError when a rank does not take part.
Status allGatherBytes(ncclComm_t comm, int ranks, const void* mine, size_t bytes, std::vector<uint8_t>* all,
                      int timeoutMs);

}  // namespace nccl_moe
