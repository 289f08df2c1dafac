// Consistency checks of a cluster model, beyond what the JSON parser checks field by field.
#pragma once

#include <string>
#include <vector>

#include "topology/model.h"

namespace nccl_moe::topo {

// Every problem found, each naming its place ("nodes[1].gpus[2].rail: 9 is not a NIC index ...").
std::vector<std::string> findProblems(const Cluster& cluster);

// Throws topo::Error listing the problems, prefixed with `where` (a file name, or "preset x").
void requireValid(const Cluster& cluster, const std::string& where);

// "dddd:bb:dd.f" in lower-case hex.
bool isPciBusId(const std::string& text);

}  // namespace nccl_moe::topo
