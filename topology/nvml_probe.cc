#include "topology/nvml_probe.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <utility>

namespace nccl_moe::topo {

namespace {

// The few NVML declarations we need, written from NVML's public API documentation (the driver
// provides the library; the toolkit here ships no nvml.h).
using NvmlReturn = int;
constexpr NvmlReturn kNvmlSuccess = 0;
struct NvmlDeviceOpaque;
using NvmlDevice = NvmlDeviceOpaque*;
constexpr unsigned kNvmlMaxLinks = 18;
constexpr int kNvmlFeatureEnabled = 1;
constexpr unsigned kNvlinkDeviceTypeGpu = 0;
constexpr unsigned kNvlinkDeviceTypeSwitch = 2;
constexpr unsigned char kFabricStateCompleted = 3;

struct NvmlPciInfo {
  char busIdLegacy[16];
  unsigned domain;
  unsigned bus;
  unsigned device;
  unsigned pciDeviceId;
  unsigned pciSubSystemId;
  char busId[32];
};

struct NvmlGpuFabricInfo {
  unsigned char clusterUuid[16];
  NvmlReturn status;
  unsigned cliqueId;
  unsigned char state;
};

// Owns the dlopen handle.
class SharedLibrary {
 public:
  explicit SharedLibrary(const char* name) : handle_(dlopen(name, RTLD_NOW | RTLD_LOCAL)) {
    if (handle_ == nullptr) {
      const char* why = dlerror();
      error_ = why != nullptr ? why : "dlopen failed";
    }
  }
  ~SharedLibrary() {
    if (handle_ != nullptr) dlclose(handle_);
  }
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;

  bool loaded() const { return handle_ != nullptr; }
  const std::string& error() const { return error_; }

  template <typename Function>
  Function symbol(const char* name) const {
    return handle_ != nullptr ? reinterpret_cast<Function>(dlsym(handle_, name)) : nullptr;
  }

 private:
  void* handle_;
  std::string error_;
};

struct NvmlApi {
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  NvmlReturn (*handleByBusId)(const char*, NvmlDevice*) = nullptr;
  NvmlReturn (*linkState)(NvmlDevice, unsigned, int*) = nullptr;
  NvmlReturn (*remotePci)(NvmlDevice, unsigned, NvmlPciInfo*) = nullptr;
  NvmlReturn (*remoteType)(NvmlDevice, unsigned, unsigned*) = nullptr;  // optional
  NvmlReturn (*fabricInfo)(NvmlDevice, NvmlGpuFabricInfo*) = nullptr;   // optional

  explicit NvmlApi(const SharedLibrary& library)
      : init(library.symbol<decltype(init)>("nvmlInit_v2")),
        shutdown(library.symbol<decltype(shutdown)>("nvmlShutdown")),
        handleByBusId(library.symbol<decltype(handleByBusId)>("nvmlDeviceGetHandleByPciBusId_v2")),
        linkState(library.symbol<decltype(linkState)>("nvmlDeviceGetNvLinkState")),
        remotePci(library.symbol<decltype(remotePci)>("nvmlDeviceGetNvLinkRemotePciInfo_v2")),
        remoteType(library.symbol<decltype(remoteType)>("nvmlDeviceGetNvLinkRemoteDeviceType")),
        fabricInfo(library.symbol<decltype(fabricInfo)>("nvmlDeviceGetGpuFabricInfo")) {}

  bool complete() const {
    return init && shutdown && handleByBusId && linkState && remotePci;
  }
};

// nvmlInit / nvmlShutdown pairing.
class NvmlSession {
 public:
  explicit NvmlSession(const NvmlApi& api) : api_(api), status_(api.init()) {}
  ~NvmlSession() {
    if (status_ == kNvmlSuccess) api_.shutdown();
  }
  NvmlSession(const NvmlSession&) = delete;
  NvmlSession& operator=(const NvmlSession&) = delete;
  NvmlReturn status() const { return status_; }

 private:
  const NvmlApi& api_;
  NvmlReturn status_;
};

std::string fabricDomainOf(const NvmlApi& api, NvmlDevice device) {
  if (api.fabricInfo == nullptr) return "";
  NvmlGpuFabricInfo info{};
  if (api.fabricInfo(device, &info) != kNvmlSuccess || info.state != kFabricStateCompleted ||
      info.status != kNvmlSuccess) {
    return "";
  }
  bool zero = std::all_of(std::begin(info.clusterUuid), std::end(info.clusterUuid),
                          [](unsigned char b) { return b == 0; });
  if (zero) return "";
  std::string text;
  for (unsigned char byte : info.clusterUuid) {
    char hex[3];
    std::snprintf(hex, sizeof(hex), "%02x", byte);
    text += hex;
  }
  return text + "/" + std::to_string(info.cliqueId);
}

GpuNvlinks linksOf(const NvmlApi& api, NvmlDevice device, const std::string& busId,
                   const std::vector<std::string>& localGpus) {
  GpuNvlinks links;
  links.busId = busId;
  for (unsigned link = 0; link < kNvmlMaxLinks; ++link) {
    int state = 0;
    if (api.linkState(device, link, &state) != kNvmlSuccess || state != kNvmlFeatureEnabled) continue;
    ++links.activeLinks;
    unsigned type = kNvlinkDeviceTypeSwitch;
    bool typed = api.remoteType != nullptr && api.remoteType(device, link, &type) == kNvmlSuccess;
    NvmlPciInfo remote{};
    std::string remoteBus;
    if (api.remotePci(device, link, &remote) == kNvmlSuccess) remoteBus = normalizePciBusId(remote.busId);
    bool toLocalGpu = std::find(localGpus.begin(), localGpus.end(), remoteBus) != localGpus.end();
    if ((typed && type == kNvlinkDeviceTypeGpu) || (!typed && toLocalGpu)) {
      ++links.peerLinks[remoteBus];
    } else {
      ++links.switchLinks;  // NVSwitch, or an end we cannot see (NCCL assumes a switch too)
    }
  }
  links.fabricDomain = fabricDomainOf(api, device);
  return links;
}

}  // namespace

NvmlReport queryNvml(const std::vector<std::string>& gpuBusIds) {
  NvmlReport report;
  SharedLibrary library("libnvidia-ml.so.1");
  if (!library.loaded()) {
    report.note = "NVML not available (" + library.error() + "): no NVLink data";
    return report;
  }
  NvmlApi api(library);
  if (!api.complete()) {
    report.note = "NVML lacks NVLink entry points: no NVLink data";
    return report;
  }
  NvmlSession session(api);
  if (session.status() != kNvmlSuccess) {
    report.note = "nvmlInit failed with code " + std::to_string(session.status()) + ": no NVLink data";
    return report;
  }
  for (const auto& busId : gpuBusIds) {
    NvmlDevice device = nullptr;
    if (api.handleByBusId(busId.c_str(), &device) != kNvmlSuccess) {
      report.note = "NVML does not know GPU " + busId;
      continue;
    }
    report.gpus.push_back(linksOf(api, device, busId, gpuBusIds));
  }
  return report;
}

void applyNvlinks(Node& node, const NvmlReport& report) {
  const size_t count = node.gpus.size();
  std::vector<const GpuNvlinks*> byGpu(count, nullptr);
  for (size_t g = 0; g < count; ++g) {
    for (const auto& links : report.gpus) {
      if (links.busId == node.gpus[g].busId) byGpu[g] = &links;
    }
    if (byGpu[g] == nullptr) continue;
    Gpu& gpu = node.gpus[g];
    gpu.nvlinks = byGpu[g]->activeLinks;
    gpu.nvswitchLinks = byGpu[g]->switchLinks;
    double perLink = nvlinkGBpsPerLinkForSm(gpu.smVersion());
    gpu.nvlinkGBpsPerLink = gpu.nvlinks == 0 ? 0 : perLink > 0 ? perLink : 25;
  }
  node.nvlinks.assign(count, std::vector<int>(count, 0));
  for (size_t a = 0; a < count; ++a) {
    for (size_t b = 0; b < count; ++b) {
      if (a == b) continue;
      int links = std::min(node.gpus[a].nvswitchLinks, node.gpus[b].nvswitchLinks);
      if (byGpu[a] != nullptr) {
        auto direct = byGpu[a]->peerLinks.find(node.gpus[b].busId);
        if (direct != byGpu[a]->peerLinks.end()) links += direct->second;
      }
      node.nvlinks[a][b] = std::max(node.nvlinks[a][b], links);
      node.nvlinks[b][a] = node.nvlinks[a][b];
    }
  }
  std::string domain;
  bool same = count > 0;
  for (size_t g = 0; g < count && same; ++g) {
    std::string mine = byGpu[g] != nullptr ? byGpu[g]->fabricDomain : "";
    if (g == 0) domain = mine;
    same = !mine.empty() && mine == domain;
  }
  if (same) node.nvlinkDomain = domain;
}

}  // namespace nccl_moe::topo
