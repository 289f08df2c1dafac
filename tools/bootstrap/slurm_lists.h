// SLURM's compressed lists, as its variables hold them.
#pragma once

#include <string>
#include <vector>

namespace nccl_moe::bootstrap {

// Tasks per node, one entry per node: "2(x3),1" is {2, 2, 2, 1}. `name` is the variable the text
// came from; throws BootstrapError naming it and the entry that does not parse.
std::vector<int> expandTasksPerNode(const std::string& name, const std::string& text);

// The first host of a node list: "gpu[07-10,12],login1" is "gpu07" (zero padding kept; every
// bracket of the first entry contributes its first value). Throws BootstrapError naming `name`.
std::string firstHostOf(const std::string& name, const std::string& text);

}  // namespace nccl_moe::bootstrap
