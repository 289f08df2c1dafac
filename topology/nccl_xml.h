// NCCL's topology XML: export (the NCCL_TOPO_FILE format) and import of NCCL's own dump
// (NCCL_TOPO_DUMP_FILE). Format: <system version="1"> holding <cpu> per NUMA node (host_hash
// tells hosts apart), PCI switches and devices as nested <pci>, <gpu> with <nvlink> children,
// and <nic><net/></nic>.
//
// The XML carries what NCCL knows: the PCI tree, NVLinks, NICs and CPU sets. GPU names, SM counts
// and memory are not in it and import as unknown (0 / ""). PCIe classes are rebuilt from the
// tree: same parent switch PIX, common switch PXB, same CPU NODE (the XML cannot tell PHB from
// NODE), different CPU SYS.
#pragma once

#include <string>

#include "topology/model.h"
#include "topology/xml_document.h"

namespace nccl_moe::topo {

inline constexpr int kNcclTopoXmlVersion = 1;

// One <system> for one node, or for all nodes (each <cpu> tagged with its host's hash).
XmlElement toNcclXml(const Node& node);
XmlElement toNcclXml(const Cluster& cluster);
std::string toNcclXmlText(const Cluster& cluster);

// Each host_hash becomes a node (in order of first appearance); throws topo::Error with line
// numbers on malformed or unsupported files.
Cluster parseNcclXml(const std::string& text, const std::string& source);

}  // namespace nccl_moe::topo
