#include "topology/json_io.h"

#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include "topology/error.h"

namespace nccl_moe::topo {

namespace {

const char* typeName(const Json& value) { return value.type_name(); }

// Reads one JSON object field by field, remembering the path for messages and the keys it saw
// so that finish() can reject the ones it does not know.
class ObjectReader {
 public:
  ObjectReader(const Json& object, std::string source, std::string path)
      : object_(object), source_(std::move(source)), path_(std::move(path)) {
    if (!object_.is_object()) failHere("", "expected an object, got ", typeName(object_));
  }

  bool has(const char* key) const { return object_.contains(key); }

  const Json& child(const char* key) {
    seen_.insert(key);
    if (!object_.contains(key)) failHere(key, "is required");
    return object_.at(key);
  }

  std::string childPath(const char* key) const { return join(key); }
  const std::string& source() const { return source_; }

  std::string string(const char* key, const std::string& fallback, bool required = false) {
    if (!present(key, required)) return fallback;
    const Json& value = object_.at(key);
    if (!value.is_string()) failHere(key, "expected a string, got ", typeName(value));
    return value.get<std::string>();
  }

  int integer(const char* key, int fallback, int min, int max, bool required = false) {
    if (!present(key, required)) return fallback;
    const Json& value = object_.at(key);
    if (!value.is_number_integer()) failHere(key, "expected an integer, got ", typeName(value));
    if (!integerInRange(value, min, max)) {
      failHere(key, describeJson(value), " is out of range [", min, ", ", max, "]");
    }
    return value.get<int>();
  }

  uint64_t unsignedInteger(const char* key, uint64_t fallback) {
    if (!present(key, false)) return fallback;
    const Json& value = object_.at(key);
    // Parsed non-negative integers are unsigned; ones built in code may be signed.
    bool nonNegative = value.is_number_unsigned() ||
                       integerInRange(value, 0, std::numeric_limits<int64_t>::max());
    if (!nonNegative) {
      failHere(key, "expected a non-negative integer, got ", describeJson(value));
    }
    return value.get<uint64_t>();
  }

  double number(const char* key, double fallback, double min, double max) {
    if (!present(key, false)) return fallback;
    const Json& value = object_.at(key);
    if (!value.is_number()) failHere(key, "expected a number, got ", typeName(value));
    double number = value.get<double>();
    if (!(number >= min && number <= max)) {
      failHere(key, numberText(number), " is out of range [", numberText(min), ", ",
               numberText(max), "]");
    }
    return number;
  }

  // Rejects keys this reader did not ask for: a typo must not silently become a default.
  void finish() const {
    for (const auto& item : object_.items()) {
      if (seen_.count(item.key()) == 0) failHere(excerpt(item.key()), "unknown key");
    }
  }

  template <typename... Parts>
  [[noreturn]] void failHere(const std::string& key, Parts&&... parts) const {
    fail(source_, ": ", key.empty() ? path_ : join(key), ": ", std::forward<Parts>(parts)...);
  }

 private:
  bool present(const char* key, bool required) {
    seen_.insert(key);
    if (object_.contains(key)) return true;
    if (required) failHere(key, "is required");
    return false;
  }

  std::string join(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  const Json& object_;
  std::string source_;
  std::string path_;
  std::set<std::string> seen_;
};

std::string indexPath(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

const Json& requireArray(const Json& value, const std::string& source, const std::string& path) {
  if (!value.is_array()) fail(source, ": ", path, ": expected an array, got ", typeName(value));
  return value;
}

Json pcieToJson(const PcieLink& link) {
  return Json{{"gen", link.gen}, {"width", link.width}, {"gbytes_per_s", link.gbytesPerSec}};
}

PcieLink pcieFromJson(const Json& json, const std::string& source, const std::string& path) {
  ObjectReader reader(json, source, path);
  PcieLink link;
  link.gen = reader.integer("gen", 0, 0, kMaxPcieGen);
  link.width = reader.integer("width", 0, 0, kMaxPcieWidth);
  link.gbytesPerSec = reader.number("gbytes_per_s", 0, 0, kMaxLinkGBps);
  reader.finish();
  return link;
}

std::string ccString(const Gpu& gpu) {
  return std::to_string(gpu.ccMajor) + "." + std::to_string(gpu.ccMinor);
}

Json gpuToJson(const Gpu& gpu) {
  return Json{{"index", gpu.index},
              {"name", gpu.name},
              {"bus_id", gpu.busId},
              {"compute_capability", ccString(gpu)},
              {"sm_count", gpu.smCount},
              {"memory_bytes", gpu.memoryBytes},
              {"numa", gpu.numa},
              {"cpu_affinity", gpu.cpuAffinity},
              {"pcie", pcieToJson(gpu.pcie)},
              {"nvlink",
               {{"links", gpu.nvlinks},
                {"switch_links", gpu.nvswitchLinks},
                {"gbytes_per_s_per_link", gpu.nvlinkGBpsPerLink}}},
              {"rail", gpu.rail}};
}

void parseComputeCapability(ObjectReader& reader, Gpu& gpu) {
  std::string text = reader.string("compute_capability", "0.0");
  size_t dot = text.find('.');
  bool ok = dot != std::string::npos && dot > 0 && dot + 2 == text.size() &&
            text.find_first_not_of("0123456789.") == std::string::npos &&
            text.find('.', dot + 1) == std::string::npos && dot <= 2;
  if (!ok) reader.failHere("compute_capability", "'", excerpt(text), "' is not like \"9.0\"");
  gpu.ccMajor = std::stoi(text.substr(0, dot));
  gpu.ccMinor = std::stoi(text.substr(dot + 1));
}

Gpu gpuFromJson(const Json& json, const std::string& source, const std::string& path,
                int defaultIndex) {
  ObjectReader reader(json, source, path);
  Gpu gpu;
  gpu.index = reader.integer("index", defaultIndex, 0, std::numeric_limits<int>::max());
  gpu.name = reader.string("name", "");
  gpu.busId = reader.string("bus_id", "");
  parseComputeCapability(reader, gpu);
  gpu.smCount = reader.integer("sm_count", 0, 0, 1 << 20);
  gpu.memoryBytes = reader.unsignedInteger("memory_bytes", 0);
  gpu.numa = reader.integer("numa", -1, -1, 1 << 16);
  gpu.cpuAffinity = reader.string("cpu_affinity", "");
  if (reader.has("pcie")) {
    gpu.pcie = pcieFromJson(reader.child("pcie"), source, reader.childPath("pcie"));
  }
  if (reader.has("nvlink")) {
    ObjectReader nvlink(reader.child("nvlink"), source, reader.childPath("nvlink"));
    gpu.nvlinks = nvlink.integer("links", 0, 0, 64);
    gpu.nvswitchLinks = nvlink.integer("switch_links", 0, 0, 64);
    gpu.nvlinkGBpsPerLink = nvlink.number("gbytes_per_s_per_link", 0, 0, kMaxLinkGBps);
    nvlink.finish();
  }
  gpu.rail = reader.integer("rail", -1, -1, 1 << 16);
  reader.finish();
  return gpu;
}

Json nicToJson(const Nic& nic) {
  return Json{{"name", nic.name},
              {"kind", toString(nic.kind)},
              {"bus_id", nic.busId},
              {"numa", nic.numa},
              {"cpu_affinity", nic.cpuAffinity},
              {"gbit_per_s", nic.gbitPerSec},
              {"port", nic.port},
              {"guid", nic.guid},
              {"netdev", nic.netdev},
              {"pcie", pcieToJson(nic.pcie)}};
}

Nic nicFromJson(const Json& json, const std::string& source, const std::string& path) {
  ObjectReader reader(json, source, path);
  Nic nic;
  nic.name = reader.string("name", "", true);
  std::string kind = reader.string("kind", "ethernet");
  auto parsedKind = nicKindFromString(kind);
  if (!parsedKind) {
    reader.failHere("kind", "'", excerpt(kind), "' is not one of infiniband, roce, efa, ethernet");
  }
  nic.kind = *parsedKind;
  nic.busId = reader.string("bus_id", "");
  nic.numa = reader.integer("numa", -1, -1, 1 << 16);
  nic.cpuAffinity = reader.string("cpu_affinity", "");
  nic.gbitPerSec = reader.number("gbit_per_s", 0, 0, kMaxNicGbitPerSec);
  nic.port = reader.integer("port", 1, 1, 1 << 16);
  nic.guid = reader.string("guid", "");
  nic.netdev = reader.string("netdev", "");
  if (reader.has("pcie")) {
    nic.pcie = pcieFromJson(reader.child("pcie"), source, reader.childPath("pcie"));
  }
  reader.finish();
  return nic;
}

Json intMatrixToJson(const Matrix<int>& matrix) {
  Json rows = Json::array();
  for (const auto& row : matrix) rows.push_back(row);
  return rows;
}

Json pathMatrixToJson(const Matrix<PathClass>& matrix, bool square) {
  Json rows = Json::array();
  for (size_t r = 0; r < matrix.size(); ++r) {
    Json row = Json::array();
    for (size_t c = 0; c < matrix[r].size(); ++c) {
      row.push_back(square && r == c ? "X" : toString(matrix[r][c]));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// Rows must have `cols` entries; a square matrix's diagonal is "X" (paths) or 0 (links).
template <typename T, typename Convert>
Matrix<T> matrixFromJson(const Json& json, const std::string& source, const std::string& path,
                         size_t rows, size_t cols, Convert convert) {
  requireArray(json, source, path);
  if (json.size() != rows) {
    fail(source, ": ", path, ": expected ", rows, " rows (one per GPU), got ", json.size());
  }
  Matrix<T> matrix(rows);
  for (size_t r = 0; r < rows; ++r) {
    std::string rowPath = indexPath(path, r);
    const Json& row = requireArray(json[r], source, rowPath);
    if (row.size() != cols) {
      fail(source, ": ", rowPath, ": expected ", cols, " entries, got ", row.size());
    }
    for (size_t c = 0; c < cols; ++c) {
      matrix[r].push_back(convert(row[c], indexPath(rowPath, c), r == c));
    }
  }
  return matrix;
}

Matrix<PathClass> pathMatrixFromJson(const Json& json, const std::string& source,
                                     const std::string& path, size_t rows, size_t cols,
                                     bool square) {
  auto convert = [&](const Json& cell, const std::string& at, bool diagonal) {
    if (!cell.is_string()) fail(source, ": ", at, ": expected a string, got ", typeName(cell));
    std::string text = cell.get<std::string>();
    if (square && diagonal) {
      if (text != "X") {
        fail(source, ": ", at, ": the diagonal must be \"X\", got '", excerpt(text), "'");
      }
      return PathClass::kPix;
    }
    auto parsed = pathClassFromString(text);
    if (!parsed) {
      fail(source, ": ", at, ": '", excerpt(text), "' is not one of PIX, PXB, PHB, NODE, SYS");
    }
    return *parsed;
  };
  return matrixFromJson<PathClass>(json, source, path, rows, cols, convert);
}

Matrix<int> intMatrixFromJson(const Json& json, const std::string& source,
                              const std::string& path, size_t size, int min) {
  auto convert = [&](const Json& cell, const std::string& at, bool) {
    if (!integerInRange(cell, min, 1024)) {
      fail(source, ": ", at, ": expected an integer in [", min, ", 1024], got ", describeJson(cell));
    }
    return cell.get<int>();
  };
  return matrixFromJson<int>(json, source, path, size, size, convert);
}

}  // namespace

Json toJson(const Node& node) {
  Json gpus = Json::array();
  for (const auto& gpu : node.gpus) gpus.push_back(gpuToJson(gpu));
  Json nics = Json::array();
  for (const auto& nic : node.nics) nics.push_back(nicToJson(nic));
  Json numa = Json::array();
  for (const auto& n : node.numa) {
    numa.push_back(Json{{"id", n.id}, {"cpus", n.cpus}, {"memory_bytes", n.memoryBytes}});
  }
  Json json{{"hostname", node.hostname},
            {"host_id", node.hostId},
            {"nvlink_domain", node.nvlinkDomain},
            {"cpu",
             {{"arch", node.cpu.arch},
              {"vendor", node.cpu.vendor},
              {"model", node.cpu.model},
              {"family_id", node.cpu.familyId},
              {"model_id", node.cpu.modelId}}},
            {"numa", numa},
            {"gpus", gpus},
            {"nics", nics},
            {"nvlinks", intMatrixToJson(node.nvlinks)},
            {"gpu_paths", pathMatrixToJson(node.gpuPaths, true)},
            {"gpu_nic_paths", pathMatrixToJson(node.gpuNicPaths, false)}};
  if (!node.p2pPerfRank.empty()) json["p2p_perf_rank"] = intMatrixToJson(node.p2pPerfRank);
  return json;
}

Json toJson(const Cluster& cluster) {
  Json nodes = Json::array();
  for (const auto& node : cluster.nodes) nodes.push_back(toJson(node));
  return Json{{"schema", kClusterSchemaName},
              {"version", kClusterSchemaVersion},
              {"name", cluster.name},
              {"nodes", nodes}};
}

Node nodeFromJson(const Json& json, const std::string& source, const std::string& path) {
  ObjectReader reader(json, source, path);
  Node node;
  node.hostname = reader.string("hostname", "");
  node.hostId = reader.string("host_id", "");
  node.nvlinkDomain = reader.string("nvlink_domain", "");
  if (reader.has("cpu")) {
    ObjectReader cpu(reader.child("cpu"), source, reader.childPath("cpu"));
    node.cpu.arch = cpu.string("arch", "");
    node.cpu.vendor = cpu.string("vendor", "");
    node.cpu.model = cpu.string("model", "");
    node.cpu.familyId = cpu.integer("family_id", 0, 0, 1 << 16);
    node.cpu.modelId = cpu.integer("model_id", 0, 0, 1 << 16);
    cpu.finish();
  }
  if (reader.has("numa")) {
    std::string numaPath = reader.childPath("numa");
    const Json& list = requireArray(reader.child("numa"), source, numaPath);
    for (size_t i = 0; i < list.size(); ++i) {
      ObjectReader numa(list[i], source, indexPath(numaPath, i));
      NumaNode entry;
      entry.id = numa.integer("id", 0, 0, 1 << 16, true);
      entry.cpus = numa.string("cpus", "");
      entry.memoryBytes = numa.unsignedInteger("memory_bytes", 0);
      numa.finish();
      node.numa.push_back(entry);
    }
  }
  std::string gpusPath = reader.childPath("gpus");
  const Json& gpus = requireArray(reader.child("gpus"), source, gpusPath);
  for (size_t g = 0; g < gpus.size(); ++g) {
    node.gpus.push_back(gpuFromJson(gpus[g], source, indexPath(gpusPath, g), static_cast<int>(g)));
  }
  if (reader.has("nics")) {
    std::string nicsPath = reader.childPath("nics");
    const Json& nics = requireArray(reader.child("nics"), source, nicsPath);
    for (size_t i = 0; i < nics.size(); ++i) {
      node.nics.push_back(nicFromJson(nics[i], source, indexPath(nicsPath, i)));
    }
  }
  const size_t gpuCount = node.gpus.size();
  if (reader.has("nvlinks")) {
    node.nvlinks = intMatrixFromJson(reader.child("nvlinks"), source,
                                     reader.childPath("nvlinks"), gpuCount, 0);
  }
  if (reader.has("gpu_paths")) {
    node.gpuPaths = pathMatrixFromJson(reader.child("gpu_paths"), source,
                                       reader.childPath("gpu_paths"), gpuCount, gpuCount, true);
  }
  if (reader.has("gpu_nic_paths")) {
    node.gpuNicPaths =
        pathMatrixFromJson(reader.child("gpu_nic_paths"), source,
                           reader.childPath("gpu_nic_paths"), gpuCount, node.nics.size(), false);
  }
  if (reader.has("p2p_perf_rank")) {
    node.p2pPerfRank = intMatrixFromJson(reader.child("p2p_perf_rank"), source,
                                         reader.childPath("p2p_perf_rank"), gpuCount, -1);
  }
  reader.finish();
  completeDerived(node);
  return node;
}

Cluster clusterFromJson(const Json& json, const std::string& source) {
  ObjectReader reader(json, source, "");
  std::string schema = reader.string("schema", "", true);
  if (schema != kClusterSchemaName) {
    reader.failHere("schema", "'", excerpt(schema), "' is not \"", kClusterSchemaName, "\"");
  }
  int version = reader.integer("version", 0, 0, std::numeric_limits<int>::max(), true);
  if (version != kClusterSchemaVersion) {
    reader.failHere("version", "schema version ", version, " is not supported (this build reads ",
                    kClusterSchemaVersion, ")");
  }
  Cluster cluster;
  cluster.name = reader.string("name", "");
  const Json& nodes = requireArray(reader.child("nodes"), source, "nodes");
  for (size_t n = 0; n < nodes.size(); ++n) {
    cluster.nodes.push_back(nodeFromJson(nodes[n], source, indexPath("nodes", n)));
  }
  reader.finish();
  return cluster;
}

namespace {

// "source:line:column" of the byte at `offset` (0-based).
std::string textPosition(const std::string& text, const std::string& source, size_t offset) {
  offset = std::min(offset, text.size());
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return source + ":" + std::to_string(line) + ":" + std::to_string(column);
}

// Counts brackets outside strings; nlohmann parses any depth, but what uses the value may not.
// Malformed text is left to the parser, which says what is wrong with it.
void requireShallowJson(const std::string& text, const std::string& source) {
  int depth = 0;
  bool inString = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\') ++i;
      else if (c == '"') inString = false;
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        fail(textPosition(text, source, i), ": invalid JSON: nested deeper than ", kMaxJsonDepth,
             " levels of arrays and objects");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

}  // namespace

Json parseJsonText(const std::string& text, const std::string& source) {
  requireShallowJson(text, source);
  // nlohmann's messages quote the token they stopped at, which can be the rest of the file.
  constexpr size_t kQuoteLimit = 200;
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& error) {
    // nlohmann reports the byte offset (1-based, the byte it stopped at).
    size_t offset = error.byte > 0 ? error.byte - 1 : 0;
    fail(textPosition(text, source, offset), ": invalid JSON: ", excerpt(error.what(), kQuoteLimit));
  } catch (const Json::exception& error) {
    // out_of_range 406: a number beyond a double (1e400). nlohmann gives no position.
    fail(source, ": invalid JSON: ", excerpt(error.what(), kQuoteLimit));
  }
}

std::string toJsonText(const Cluster& cluster) { return dumpJson(toJson(cluster), 2) + "\n"; }

Cluster parseClusterJson(const std::string& text, const std::string& source) {
  return clusterFromJson(parseJsonText(text, source), source);
}

std::string dumpJson(const Json& json, int indent) {
  return json.dump(indent, ' ', false, Json::error_handler_t::replace);
}

std::string describeJson(const Json& value) {
  if (value.is_structured()) return typeName(value);
  return excerpt(dumpJson(value));
}

bool integerInRange(const Json& value, int64_t min, int64_t max) {
  if (value.is_number_unsigned()) {
    uint64_t number = value.get<uint64_t>();
    return (min <= 0 || number >= static_cast<uint64_t>(min)) &&
           max >= 0 && number <= static_cast<uint64_t>(max);
  }
  if (!value.is_number_integer()) return false;
  int64_t number = value.get<int64_t>();
  return number >= min && number <= max;
}

}  // namespace nccl_moe::topo
