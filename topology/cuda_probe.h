// What the CUDA runtime says about this machine's GPUs. Any error of cudaGetDeviceCount (no
// driver, no device, a broken install) means "no GPU": the probe goes on without CUDA data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "topology/model.h"

namespace nccl_moe::topo {

struct CudaDevice {
  int ordinal = 0;
  std::string name;
  std::string busId;  // normalised, "0000:1b:00.0"
  int ccMajor = 0;
  int ccMinor = 0;
  int smCount = 0;
  uint64_t memoryBytes = 0;
};

struct CudaReport {
  std::vector<CudaDevice> devices;  // in CUDA ordinal order
  Matrix<int> p2pPerfRank;          // [a][b]: performance rank, -1 no peer access
  std::string note;                 // why there are no devices, when there are none
};

CudaReport queryCudaDevices();

// Puts the node's GPUs in CUDA ordinal order and fills name, SMs, memory and P2P ranks. GPUs that
// hwloc saw but CUDA does not (CUDA_VISIBLE_DEVICES) are dropped; GPUs CUDA sees that hwloc did
// not are added with unknown locality. A report without devices leaves the node as it is.
void applyCudaDevices(Node& node, const CudaReport& report);

}  // namespace nccl_moe::topo
