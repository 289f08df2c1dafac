#include "topology/sysfs_probe.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace nccl_moe::topo {

namespace {

// First line of a small sysfs file, or "" when it cannot be read.
std::string readLine(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  if (!file || !std::getline(file, line)) return "";
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
  return line;
}

int genOfSpeed(const std::string& text) {
  double rate = std::atof(text.c_str());
  if (rate >= 60) return 6;
  if (rate >= 30) return 5;
  if (rate >= 15) return 4;
  if (rate >= 7.5) return 3;
  if (rate >= 4.5) return 2;
  if (rate >= 2) return 1;
  return 0;
}

void applyPcie(PcieLink& link, const std::string& sysRoot, const std::string& busId) {
  if (busId.empty()) return;
  std::string device = sysRoot + "/bus/pci/devices/" + busId + "/";
  int gen = genOfSpeed(readLine(device + "max_link_speed"));
  int width = std::atoi(readLine(device + "max_link_width").c_str());
  if (gen > 0 && width > 0) {
    // The current link may be trained down while idle (GPUs drop to Gen1); report what it is
    // built for, and derive GB/s from it.
    link = {gen, width, 0};
  }
}

void applyNic(Nic& nic, const std::string& sysRoot) {
  std::string port = sysRoot + "/class/infiniband/" + nic.name + "/ports/" + std::to_string(nic.port) + "/";
  std::string rate = readLine(port + "rate");
  if (!rate.empty()) {
    double gbit = std::atof(rate.c_str());  // "400 Gb/sec (4X NDR)"
    if (gbit > 0) nic.gbitPerSec = gbit;
    std::string layer = readLine(port + "link_layer");
    if (nic.kind != NicKind::kEfa) {
      if (layer == "InfiniBand") nic.kind = NicKind::kInfiniband;
      if (layer == "Ethernet") nic.kind = NicKind::kRoce;
    }
    return;
  }
  std::string netdev = nic.netdev.empty() ? nic.name : nic.netdev;
  long mbps = std::atol(readLine(sysRoot + "/class/net/" + netdev + "/speed").c_str());
  if (mbps > 0) nic.gbitPerSec = static_cast<double>(mbps) / 1000.0;
}

}  // namespace

void applySysfs(Node& node, const std::string& sysRoot) {
  for (auto& gpu : node.gpus) applyPcie(gpu.pcie, sysRoot, gpu.busId);
  for (auto& nic : node.nics) {
    applyPcie(nic.pcie, sysRoot, nic.busId);
    applyNic(nic, sysRoot);
  }
}

HostIdentity readHostIdentity() {
  HostIdentity identity;
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) == 0) identity.hostname = name;
  const char* override = std::getenv("NCCL_HOSTID");
  if (override != nullptr && *override != '\0') {
    identity.hostId = override;
  } else {
    identity.hostId = identity.hostname + "/" + readLine("/proc/sys/kernel/random/boot_id");
  }
  return identity;
}

}  // namespace nccl_moe::topo
