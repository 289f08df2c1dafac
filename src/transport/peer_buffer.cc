#include "transport/peer_buffer.h"

#include <cuda_runtime.h>

#include <cstring>

#include "misc/host_wait.h"
#include "misc/nccl_status.h"

namespace nccl_moe {

Status allGatherBytes(ncclComm_t comm, int ranks, const void* mine, size_t bytes, std::vector<uint8_t>* all,
                      int timeoutMs) {
  // Each rank's slice is padded to 16 bytes: NCCL's kernels move whole words, and every access must
  // stay inside the allocation.
  const size_t stride = (bytes + 15) / 16 * 16;
  DeviceMemory<uint8_t> device;
  CudaStream stream;
  if (Status s = allocateDevice(stride * (ranks + 1), &device, "cudaMalloc(exchange)"); !s.isOk()) return s;
  if (Status s = stream.create(); !s.isOk()) return s;
  uint8_t* send = device.get() + stride * ranks;
  if (Status s = cudaStatus(cudaMemset(device.get(), 0, stride * (ranks + 1)), "cudaMemset(exchange)"); !s.isOk())
    return s;
  if (Status s = cudaStatus(cudaMemcpy(send, mine, bytes, cudaMemcpyHostToDevice), "cudaMemcpy(exchange)"); !s.isOk())
    return s;
  // A non-blocking communicator (transport/control_comm.h) may still be enqueueing when this returns.
  const ncclResult_t queued = ncclAllGather(send, device.get(), stride, ncclUint8, comm, stream.get());
  if (queued == ncclInProgress) {
    if (Status s = waitCommReady(comm, timeoutMs, "ncclAllGather of the set-up exchange"); !s.isOk()) {
      device.abandon();
      return s;
    }
  } else if (Status s = ncclStatus(queued, "ncclAllGather"); !s.isOk()) {
    return s;
  }
  if (Status s = waitStream(stream.get(), timeoutMs, "the all-gather of the set-up exchange"); !s.isOk()) {
    // NCCL may still write into these: leave them to the process rather than free them under it.
    device.abandon();
    return s;
  }
  std::vector<uint8_t> gathered(stride * ranks);
  if (Status s = cudaStatus(cudaMemcpy(gathered.data(), device.get(), gathered.size(), cudaMemcpyDeviceToHost),
                            "cudaMemcpy(exchange)");
      !s.isOk())
    return s;
  all->resize(bytes * ranks);
  for (int r = 0; r < ranks; ++r) std::memcpy(all->data() + r * bytes, gathered.data() + r * stride, bytes);
  return Status::ok();
}

Status PeerBuffer::create(ncclComm_t comm, int rank, int ranks, int firstRank, int domainRanks, size_t bytes,
                          int timeoutMs, std::unique_ptr<PeerBuffer>* out) {
  std::unique_ptr<PeerBuffer> buffer;
  if (Status s = allocate(rank, bytes, &buffer); !s.isOk()) return s;
  if (Status s = buffer->map(comm, ranks, firstRank, domainRanks, timeoutMs); !s.isOk()) return s;
  *out = std::move(buffer);
  return Status::ok();
}

Status PeerBuffer::allocate(int rank, size_t bytes, std::unique_ptr<PeerBuffer>* out) {
  std::unique_ptr<PeerBuffer> buffer(new PeerBuffer());
  buffer->bytes_ = bytes;
  buffer->rank_ = rank;
  if (Status s = allocateDevice(bytes, &buffer->local_, "cudaMalloc(peer buffer)"); !s.isOk()) return s;
  if (Status s = cudaStatus(cudaMemset(buffer->local_.get(), 0, bytes), "cudaMemset(peer buffer)"); !s.isOk()) return s;
  if (Status s = cudaStatus(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); !s.isOk()) return s;
  *out = std::move(buffer);
  return Status::ok();
}

Status PeerBuffer::map(ncclComm_t comm, int ranks, int firstRank, int domainRanks, int timeoutMs) {
  cudaIpcMemHandle_t mine;
  if (Status s = cudaStatus(cudaIpcGetMemHandle(&mine, local_.get()), "cudaIpcGetMemHandle"); !s.isOk()) return s;
  std::vector<uint8_t> handles;
  if (Status s = allGatherBytes(comm, ranks, &mine, sizeof(mine), &handles, timeoutMs); !s.isOk()) return s;

  mapped_.assign(domainRanks, nullptr);
  std::vector<uint8_t*> table(domainRanks, nullptr);
  for (int local = 0; local < domainRanks; ++local) {
    const int peer = firstRank + local;
    if (peer == rank_) {
      table[local] = local_.get();
      continue;
    }
    cudaIpcMemHandle_t handle;
    std::memcpy(&handle, handles.data() + peer * sizeof(handle), sizeof(handle));
    void* mapped = nullptr;
    cudaError_t err = cudaIpcOpenMemHandle(&mapped, handle, cudaIpcMemLazyEnablePeerAccess);
    if (err != cudaSuccess)
      return {ncclUnhandledCudaError,
              format("rank %d cannot map the buffer of peer %d with CUDA IPC: %s (the ranks of one NVLink domain need "
                     "peer access; set NCCL_MOE_DOMAIN_SIZE to split the domain)",
                     rank_, peer, cudaGetErrorString(err))};
    mapped_[local] = static_cast<uint8_t*>(mapped);
    table[local] = static_cast<uint8_t*>(mapped);
  }
  if (Status s = allocateDevice(domainRanks, &peerTable_, "cudaMalloc(peer table)"); !s.isOk()) return s;
  return cudaStatus(cudaMemcpy(peerTable_.get(), table.data(), domainRanks * sizeof(uint8_t*), cudaMemcpyHostToDevice),
                    "cudaMemcpy(peer table)");
}

void PeerBuffer::closePeers() {
  for (uint8_t*& mapped : mapped_)
    if (mapped) {
      cudaIpcCloseMemHandle(mapped);
      mapped = nullptr;
    }
}

PeerBuffer::~PeerBuffer() { closePeers(); }

}  // namespace nccl_moe
