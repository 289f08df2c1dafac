#include "topology/text_view.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "topology/assembly.h"

namespace nccl_moe::topo {

namespace {

// Left-aligned columns sized to their widest cell.
class Table {
 public:
  void row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

  std::string render(const std::string& indent) const {
    std::vector<size_t> widths;
    for (const auto& row : rows_) {
      if (widths.size() < row.size()) widths.resize(row.size(), 0);
      for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line = indent;
      for (size_t c = 0; c < row.size(); ++c) {
        line += row[c];
        if (c + 1 < row.size()) line += std::string(widths[c] - row[c].size() + 2, ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
    return out;
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

std::string pcieText(const PcieLink& link) {
  std::string text;
  if (link.gen > 0) text += "Gen" + std::to_string(link.gen);
  if (link.width > 0) text += (text.empty() ? "x" : " x") + std::to_string(link.width);
  double gbps = pcieBandwidthGBps(link);
  if (gbps > 0) text += (text.empty() ? "" : " ") + formatGBps(gbps);
  return text.empty() ? "?" : text;
}

std::string orUnknown(const std::string& text) { return text.empty() ? "?" : text; }

std::string numaText(int numa) { return numa >= 0 ? std::to_string(numa) : "N/A"; }

std::string matrixCell(const Node& node, size_t a, size_t b) {
  if (a == b) return "X";
  int links = node.nvlinks.size() > a && node.nvlinks[a].size() > b ? node.nvlinks[a][b] : 0;
  if (links > 0) return "NV" + std::to_string(links);
  return toString(node.gpuPaths[a][b]);
}

std::string nodeShapeKey(const Node& node) {
  Cluster single;
  single.nodes.push_back(node);
  single.nodes.back().nvlinkDomain.clear();
  return fingerprint(single) + "/" + node.nvlinkDomain;
}

std::string rangeList(const std::vector<int>& values) {
  std::string text;
  for (size_t i = 0; i < values.size();) {
    size_t j = i;
    while (j + 1 < values.size() && values[j + 1] == values[j] + 1) ++j;
    text += (text.empty() ? "" : ",") + std::to_string(values[i]);
    if (j > i) text += "-" + std::to_string(values[j]);
    i = j + 1;
  }
  return text;
}

}  // namespace

std::string formatGBps(double gbytesPerSec) { return fixed(gbytesPerSec, 1) + " GB/s"; }

std::string formatBytes(uint64_t bytes) {
  if (bytes == 0) return "?";
  return fixed(static_cast<double>(bytes) / (1024.0 * 1024 * 1024), 1) + " GiB";
}

std::string renderNode(const Node& node, const std::string& title) {
  std::ostringstream out;
  out << title << "\n";
  out << "  host: " << orUnknown(node.hostname) << "  (host id " << orUnknown(node.hostId) << ")\n";
  out << "  NVLink domain: " << (node.nvlinkDomain.empty() ? "this node" : node.nvlinkDomain) << "\n";
  out << "  CPU: " << orUnknown(node.cpu.arch) << " " << orUnknown(node.cpu.vendor);
  if (!node.cpu.model.empty()) out << " " << node.cpu.model;
  out << "\n";
  for (const auto& numa : node.numa) {
    out << "  NUMA " << numa.id << ": CPUs " << orUnknown(numa.cpus) << ", memory "
        << formatBytes(numa.memoryBytes) << "\n";
  }
  if (node.gpus.empty()) {
    out << "  GPUs: none\n";
  } else {
    out << "\n";
    Table matrix;
    std::vector<std::string> header{""};
    for (size_t g = 0; g < node.gpus.size(); ++g) header.push_back("GPU" + std::to_string(g));
    for (size_t n = 0; n < node.nics.size(); ++n) header.push_back("NIC" + std::to_string(n));
    for (const char* column : {"CPU Affinity", "NUMA Affinity", "Rail"}) header.push_back(column);
    matrix.row(header);
    for (size_t a = 0; a < node.gpus.size(); ++a) {
      std::vector<std::string> row{"GPU" + std::to_string(a)};
      for (size_t b = 0; b < node.gpus.size(); ++b) row.push_back(matrixCell(node, a, b));
      for (size_t n = 0; n < node.nics.size(); ++n) row.push_back(toString(node.gpuNicPaths[a][n]));
      const Gpu& gpu = node.gpus[a];
      row.push_back(orUnknown(gpu.cpuAffinity));
      row.push_back(numaText(gpu.numa));
      row.push_back(gpu.rail >= 0 ? "NIC" + std::to_string(gpu.rail) : "-");
      matrix.row(row);
    }
    out << matrix.render("  ");
    out << "\n  GPUs:\n";
    Table gpus;
    gpus.row({"", "bus id", "name", "cc", "SMs", "memory", "PCIe", "NVLink", "rail NIC"});
    for (size_t g = 0; g < node.gpus.size(); ++g) {
      const Gpu& gpu = node.gpus[g];
      std::string nvlink = gpu.nvlinks > 0 ? std::to_string(gpu.nvlinks) + " x " +
                                                 fixed(gpu.nvlinkGBpsPerLink, 1) + " = " +
                                                 formatGBps(gpu.nvlinkGBps())
                                           : "none";
      if (gpu.nvswitchLinks > 0) nvlink += " (NVSwitch)";
      std::string cc = gpu.ccMajor > 0 ? std::to_string(gpu.ccMajor) + "." + std::to_string(gpu.ccMinor) : "?";
      gpus.row({"GPU" + std::to_string(g), orUnknown(gpu.busId), orUnknown(gpu.name), cc,
                gpu.smCount > 0 ? std::to_string(gpu.smCount) : "?", formatBytes(gpu.memoryBytes),
                pcieText(gpu.pcie), nvlink,
                gpu.rail >= 0 ? node.nics[gpu.rail].name : "-"});
    }
    out << gpus.render("    ");
  }
  if (node.nics.empty()) {
    out << "  NICs: none\n";
  } else {
    out << "\n  NICs:\n";
    Table nics;
    nics.row({"", "name", "kind", "rate", "port", "bus id", "PCIe", "NUMA", "netdev"});
    for (size_t n = 0; n < node.nics.size(); ++n) {
      const Nic& nic = node.nics[n];
      std::string rate = nic.gbitPerSec > 0 ? fixed(nic.gbitPerSec, 0) + " Gb/s" : "unknown";
      nics.row({"NIC" + std::to_string(n), nic.name, toString(nic.kind), rate, std::to_string(nic.port),
                orUnknown(nic.busId), pcieText(nic.pcie), numaText(nic.numa), nic.netdev.empty() ? "-" : nic.netdev});
    }
    out << nics.render("    ");
  }
  out << "\n  Legend: X = self, NV# = # NVLinks, PIX = same PCIe switch, PXB = PCIe switches under\n"
         "  one host bridge, PHB = through a PCIe host bridge, NODE = between host bridges of one\n"
         "  NUMA node, SYS = across NUMA nodes. Rail = the NIC a GPU uses for the network phase.\n";
  return out.str();
}

std::string renderCluster(const Cluster& cluster) {
  std::ostringstream out;
  size_t nics = 0;
  for (const auto& node : cluster.nodes) nics += node.nics.size();
  std::vector<NvlinkDomain> domains = nvlinkDomains(cluster);
  out << "Cluster: " << (cluster.name.empty() ? "(unnamed)" : cluster.name) << "\n";
  out << "  " << cluster.nodes.size() << " node" << (cluster.nodes.size() == 1 ? "" : "s") << ", "
      << cluster.gpuCount() << " GPUs, " << nics << " NICs; " << domains.size() << " NVLink domain"
      << (domains.size() == 1 ? "" : "s");
  std::map<int, int> domainSizes;
  for (const auto& domain : domains) ++domainSizes[domain.gpuCount];
  std::string sizes;
  for (const auto& [gpus, count] : domainSizes) {
    sizes += (sizes.empty() ? "" : ", ") + std::to_string(count) + " x " + std::to_string(gpus) + " GPUs";
  }
  out << (sizes.empty() ? "" : " (" + sizes + ")") << "\n";
  out << "  fingerprint: " << fingerprint(cluster) << "\n";

  // Group identical nodes so that a 36-node cluster prints one view.
  std::vector<std::pair<std::string, std::vector<int>>> groups;
  for (size_t n = 0; n < cluster.nodes.size(); ++n) {
    std::string key = nodeShapeKey(cluster.nodes[n]);
    auto match = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == key; });
    if (match == groups.end()) {
      groups.push_back({key, {static_cast<int>(n)}});
    } else {
      match->second.push_back(static_cast<int>(n));
    }
  }
  for (const auto& [key, members] : groups) {
    const Node& node = cluster.nodes[members.front()];
    out << "\n";
    std::string title = members.size() == 1 ? "Node " + std::to_string(members.front())
                                            : "Nodes " + rangeList(members) + " (" +
                                                  std::to_string(members.size()) +
                                                  " alike; showing node " +
                                                  std::to_string(members.front()) + ")";
    out << renderNode(node, title);
    if (node.gpus.empty()) continue;
    out << "  per GPU: NVLink " << formatGBps(nvlinkGBpsPerGpu(node)) << ", network "
        << formatGBps(networkGBpsPerGpu(node)) << ", PCIe " << formatGBps(pcieGBpsPerGpu(node)) << "\n";
  }
  return out.str();
}

}  // namespace nccl_moe::topo
