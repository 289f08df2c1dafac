// A small XML element tree: enough for NCCL's topology files (elements, attributes, comments,
// an optional declaration), with line numbers for error messages. Text content is ignored.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace nccl_moe::topo {

struct XmlElement {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;  // in file order
  std::vector<XmlElement> children;
  int line = 0;

  const std::string* attribute(const std::string& key) const;
  void set(const std::string& key, const std::string& value);
  XmlElement& add(const std::string& childName);
};

// Elements nested deeper than this are an error: parsing, reading and destroying the tree
// recurse once per level, and neither NCCL's nor hwloc's files come near it.
inline constexpr int kMaxXmlDepth = 256;

// The document's root element; throws topo::Error "source:line: what".
XmlElement parseXml(const std::string& text, const std::string& source);

// Two-space indentation, empty elements as <name .../>, values escaped.
std::string writeXml(const XmlElement& root);

}  // namespace nccl_moe::topo
