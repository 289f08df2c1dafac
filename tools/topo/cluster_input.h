// Where a command's cluster comes from: a file (cluster JSON, NCCL topology XML, or an hwloc XML
// export; told apart by content) or a preset, optionally replicated with --nodes.
#pragma once

#include <string>

#include "cli_args.h"
#include "topology/model.h"

namespace nccl_moe::topo::cli {

// Throws topo::Error naming the file when it cannot be read.
std::string readFile(const std::string& path);

Cluster parseClusterText(const std::string& text, const std::string& source);

// FILE (positional) or --preset NAME, and --nodes N (copies of a preset's unit, or of a
// one-node file). Usage errors when neither or both are given.
Cluster loadCluster(const Args& args);

// The option spellings loadCluster reads, for commands to accept.
inline const char* kClusterOptionsHelp =
    "  FILE               cluster JSON (nccl-moe-cluster v1), NCCL topology XML\n"
    "                     (NCCL_TOPO_FILE / NCCL_TOPO_DUMP_FILE), or hwloc XML (lstopo --of xml)\n"
    "  --preset NAME      a built-in machine (nccl-moe-topo presets lists them)\n"
    "  --nodes N          N copies of the preset's unit (a node; a rack for gb200-nvl72),\n"
    "                     or of a one-node FILE (default 1)\n";

}  // namespace nccl_moe::topo::cli
