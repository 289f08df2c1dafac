// Where a command's result goes: stdout, or --output FILE.
#pragma once

#include <string>

#include "cli_args.h"
#include "topology/model.h"

namespace nccl_moe::topo::cli {

void emit(const Args& args, const std::string& text);

// The cluster as --json (nccl-moe-cluster v1), --xml (NCCL topology XML) or the human view.
void emitCluster(const Args& args, const Cluster& cluster);

inline const char* kFormatOptionsHelp =
    "  --json             the cluster model as JSON (schema nccl-moe-cluster, version 1)\n"
    "  --xml              NCCL topology XML, usable as NCCL_TOPO_FILE\n"
    "  -o, --output FILE  write there instead of stdout\n";

}  // namespace nccl_moe::topo::cli
