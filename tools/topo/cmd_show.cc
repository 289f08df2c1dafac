#include <string>

#include "cluster_input.h"
#include "commands.h"
#include "output.h"
#include "topology/validate.h"

namespace nccl_moe::topo::cli {

namespace {
const std::string kHelp = std::string(
    "usage: nccl-moe-topo show (FILE | --preset NAME) [--nodes N] [--json | --xml] [-o FILE]\n"
    "\n"
    "Shows a saved or preset cluster the way probe shows this machine: per node, the GPU x GPU/NIC\n"
    "connection matrix (NV#, PIX, PXB, PHB, NODE, SYS), CPU and NUMA affinity, NIC rails, PCIe\n"
    "links and NVLink bandwidth; identical nodes are shown once.\n"
    "\n"
    "options:\n") + kClusterOptionsHelp + kFormatOptionsHelp;
}  // namespace

int runShow(const Argv& argv) {
  if (printedHelp(argv, kHelp.c_str())) return 0;
  OptionSpec spec{{"--json", "--xml"}, {"--preset", "--nodes", "--output", "-o"}, 1};
  Args args("show", argv, spec);
  Cluster cluster = loadCluster(args);
  requireValid(cluster, args.positionals().empty() ? "preset " + args.value("--preset", "") : args.positionals()[0]);
  emitCluster(args, cluster);
  return 0;
}

}  // namespace nccl_moe::topo::cli
