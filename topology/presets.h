// Built-in models of well-known machines, replicated over N units (nodes, or racks for NVL72).
// The numbers and their sources are documented next to each preset in presets.cc.
#pragma once

#include <string>
#include <vector>

#include "topology/model.h"

namespace nccl_moe::topo {

struct PresetInfo {
  std::string name;     // what --preset takes
  std::string summary;  // one line: GPUs, NVLink, NICs
  std::string unit;     // what --nodes counts ("node", "rack")
};

const std::vector<PresetInfo>& presetList();

// `units` copies of the preset's unit; throws topo::Error naming the known presets.
Cluster makePreset(const std::string& name, int units);

}  // namespace nccl_moe::topo
