#include <iostream>
#include <string>

#include "cluster_input.h"
#include "commands.h"
#include "output.h"
#include "topology/probe.h"

namespace nccl_moe::topo::cli {

namespace {
const std::string kHelp = std::string(
    "usage: nccl-moe-topo probe [--json | --xml] [-o FILE] [--hwloc FILE] [--no-cuda] [--no-nvml]\n"
    "\n"
    "Probes this machine: hwloc for NUMA nodes, CPU sets and the PCI tree (GPUs by bus id, verbs\n"
    "and Ethernet NICs), CUDA for GPU names, SMs, memory and P2P, NVML (loaded at run time) for\n"
    "NVLinks and multi-node NVLink fabrics, sysfs for NIC rates and PCIe generation/width. The\n"
    "human view follows nvidia-smi topo -m (compare the GPU rows and the CPU/NUMA affinity\n"
    "columns), adding NIC rails, PCIe links and NVLink bandwidth. Succeeds without GPUs, drivers\n"
    "or NICs and says what it could not see.\n"
    "\n"
    "options:\n") + kFormatOptionsHelp +
    "  --hwloc FILE       read an hwloc XML export (lstopo --of xml) instead of this machine\n"
    "                     (CUDA, NVML and sysfs are skipped: they describe this machine)\n"
    "  --no-cuda          do not ask the CUDA runtime\n"
    "  --no-nvml          do not load NVML\n";
}  // namespace

int runProbe(const Argv& argv) {
  if (printedHelp(argv, kHelp.c_str())) return 0;
  OptionSpec spec{{"--json", "--xml", "--no-cuda", "--no-nvml"}, {"--output", "-o", "--hwloc"}, 0};
  Args args("probe", argv, spec);
  ProbeOptions options;
  options.useCuda = !args.flag("--no-cuda");
  options.useNvml = !args.flag("--no-nvml");
  if (auto path = args.value("--hwloc")) {
    options.hwlocXml = readFile(*path);
    options.hwlocSource = *path;
  }
  ProbeResult result = probeLocalNode(options);
  Cluster cluster;
  cluster.name = "probe of " + (result.node.hostname.empty() ? std::string("this machine") : result.node.hostname);
  cluster.nodes.push_back(result.node);
  // Machine-readable output stays clean on stdout; what the probe could not see goes to stderr.
  bool machine = args.flag("--json") || args.flag("--xml");
  std::ostream& notes = machine ? std::cerr : std::cout;
  for (const auto& note : result.notes) notes << "probe: " << note << "\n";
  if (!machine && !result.notes.empty()) notes << "\n";
  emitCluster(args, cluster);
  return 0;
}

}  // namespace nccl_moe::topo::cli
