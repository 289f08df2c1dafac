#include "cluster_input.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "topology/error.h"
#include "topology/hwloc_reader.h"
#include "topology/json_io.h"
#include "topology/nccl_xml.h"
#include "topology/presets.h"
#include "topology/xml_document.h"

namespace nccl_moe::topo::cli {

std::string readFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) fail(path, ": cannot open: ", std::strerror(errno));
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

Cluster parseClusterText(const std::string& text, const std::string& source) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) fail(source, ": the file is empty");
  if (text[first] == '{') return parseClusterJson(text, source);
  if (text[first] != '<') {
    fail(source, ": not a cluster file: expected JSON ('{') or XML ('<'), found '", text[first], "'");
  }
  XmlElement root = parseXml(text, source);
  if (root.name == "system") return parseNcclXml(text, source);
  if (root.name == "topology") {
    Cluster cluster;
    cluster.nodes.push_back(nodeFromHwlocXml(text, source));
    return cluster;
  }
  fail(source, ":", root.line, ": root element <", excerpt(root.name),
       "> is neither NCCL's <system> nor hwloc's <topology>");
}

Cluster loadCluster(const Args& args) {
  bool fromFile = !args.positionals().empty();
  auto preset = args.value("--preset");
  if (fromFile == preset.has_value()) args.usageError("give either a FILE or --preset NAME");
  int copies = static_cast<int>(args.integer("--nodes", 1, 1, 4096));
  if (preset) return makePreset(*preset, copies);

  const std::string& path = args.positionals().front();
  Cluster cluster = parseClusterText(readFile(path), path);
  if (cluster.name.empty()) cluster.name = path;
  if (args.has("--nodes")) {
    if (cluster.nodes.size() != 1) {
      fail(path, ": --nodes replicates a one-node file, but this one has ", cluster.nodes.size(), " nodes");
    }
    Node base = cluster.nodes.front();
    cluster.nodes.clear();
    for (int i = 0; i < copies; ++i) {
      Node node = base;
      node.hostname = (base.hostname.empty() ? "node" : base.hostname) + "-" + std::to_string(i);
      node.hostId = (base.hostId.empty() ? "node" : base.hostId) + "#" + std::to_string(i);
      cluster.nodes.push_back(node);
    }
    cluster.name += " x" + std::to_string(copies);
  }
  return cluster;
}

}  // namespace nccl_moe::topo::cli
