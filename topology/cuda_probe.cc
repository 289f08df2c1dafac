#include "topology/cuda_probe.h"

#include <cuda_runtime_api.h>

#include <cstdio>

namespace nccl_moe::topo {

namespace {

std::string cudaBusId(const cudaDeviceProp& prop) {
  char text[32];
  std::snprintf(text, sizeof(text), "%04x:%02x:%02x.0", static_cast<unsigned>(prop.pciDomainID),
                static_cast<unsigned>(prop.pciBusID), static_cast<unsigned>(prop.pciDeviceID));
  return text;
}

template <typename T>
Matrix<T> permuted(const Matrix<T>& matrix, const std::vector<int>& rows,
                   const std::vector<int>& cols, T missing) {
  Matrix<T> result(rows.size(), std::vector<T>(cols.size(), missing));
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < cols.size(); ++c) {
      if (rows[r] >= 0 && cols[c] >= 0 && static_cast<size_t>(rows[r]) < matrix.size() &&
          static_cast<size_t>(cols[c]) < matrix[rows[r]].size()) {
        result[r][c] = matrix[rows[r]][cols[c]];
      }
    }
  }
  return result;
}

}  // namespace

CudaReport queryCudaDevices() {
  CudaReport report;
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    report.note = std::string("no GPU: cudaGetDeviceCount failed: ") + cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky-free error so later CUDA users start clean
    return report;
  }
  if (count == 0) {
    report.note = "no GPU: CUDA reports 0 devices";
    return report;
  }
  for (int ordinal = 0; ordinal < count; ++ordinal) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, ordinal) != cudaSuccess) {
      report.note = "CUDA device " + std::to_string(ordinal) + ": cudaGetDeviceProperties failed";
      cudaGetLastError();
      continue;
    }
    CudaDevice device;
    device.ordinal = ordinal;
    device.name = prop.name;
    device.busId = cudaBusId(prop);
    device.ccMajor = prop.major;
    device.ccMinor = prop.minor;
    device.smCount = prop.multiProcessorCount;
    device.memoryBytes = prop.totalGlobalMem;
    report.devices.push_back(device);
  }
  const size_t n = report.devices.size();
  report.p2pPerfRank.assign(n, std::vector<int>(n, -1));
  for (size_t a = 0; a < n; ++a) {
    for (size_t b = 0; b < n; ++b) {
      if (a == b) {
        report.p2pPerfRank[a][b] = 0;
        continue;
      }
      int from = report.devices[a].ordinal, to = report.devices[b].ordinal;
      int access = 0, rank = 0;
      if (cudaDeviceCanAccessPeer(&access, from, to) == cudaSuccess && access != 0 &&
          cudaDeviceGetP2PAttribute(&rank, cudaDevP2PAttrPerformanceRank, from, to) == cudaSuccess) {
        report.p2pPerfRank[a][b] = rank;
      }
      cudaGetLastError();
    }
  }
  return report;
}

void applyCudaDevices(Node& node, const CudaReport& report) {
  if (report.devices.empty()) return;
  std::vector<int> source;  // per CUDA device: index of the hwloc GPU, -1 if none
  std::vector<Gpu> gpus;
  for (const auto& device : report.devices) {
    int found = -1;
    for (size_t g = 0; g < node.gpus.size(); ++g) {
      if (node.gpus[g].busId == device.busId) found = static_cast<int>(g);
    }
    Gpu gpu = found >= 0 ? node.gpus[found] : Gpu{};
    gpu.index = device.ordinal;
    gpu.name = device.name;
    gpu.busId = device.busId;
    gpu.ccMajor = device.ccMajor;
    gpu.ccMinor = device.ccMinor;
    gpu.smCount = device.smCount;
    gpu.memoryBytes = device.memoryBytes;
    gpu.rail = -1;  // recomputed once the order is final
    source.push_back(found);
    gpus.push_back(gpu);
  }
  std::vector<int> allNics(node.nics.size());
  for (size_t n = 0; n < allNics.size(); ++n) allNics[n] = static_cast<int>(n);
  node.gpuPaths = permuted(node.gpuPaths, source, source, PathClass::kSys);
  for (size_t g = 0; g < gpus.size(); ++g) node.gpuPaths[g][g] = PathClass::kPix;
  node.gpuNicPaths = permuted(node.gpuNicPaths, source, allNics, PathClass::kSys);
  node.nvlinks.clear();  // NVML fills them for the final order
  node.gpus = std::move(gpus);
  if (report.p2pPerfRank.size() == node.gpus.size()) node.p2pPerfRank = report.p2pPerfRank;
  completeDerived(node);
}

}  // namespace nccl_moe::topo
