// NCCL topology XML (NCCL_TOPO_FILE / NCCL_TOPO_DUMP_FILE) through the generic XML parser and the
// NCCL importer. Rejections must be topo::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_cluster.h"
#include "topology/xml_document.h"

namespace {

using nccl_moe::topo::XmlElement;

// Same document, line numbers aside (writeXml lays elements out anew).
bool sameTree(const XmlElement& a, const XmlElement& b) {
  if (a.name != b.name || a.attributes != b.attributes || a.children.size() != b.children.size()) return false;
  for (size_t i = 0; i < a.children.size(); ++i)
    if (!sameTree(a.children[i], b.children[i])) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nccl_moe;
  const std::string text(reinterpret_cast<const char*>(data), size);

  XmlElement root;
  if (fuzz::acceptsOrRejects("parseXml", [&] { root = topo::parseXml(text, "fuzz.xml"); })) {
    // What the writer escapes, the parser must read back unchanged.
    fuzz::mustSucceed("XML round trip", [&] {
      const std::string written = topo::writeXml(root);
      if (!sameTree(topo::parseXml(written, "roundtrip.xml"), root))
        fuzz::bug("writeXml output does not parse back to the same tree:\n" + written);
    });
  }

  topo::Cluster cluster;
  if (fuzz::acceptsOrRejects("parseNcclXml", [&] { cluster = topo::parseNcclXml(text, "fuzz.xml"); }))
    fuzz::exerciseCluster(cluster);
  return 0;
}
