#include <iostream>
#include <string>

#include "cluster_input.h"
#include "commands.h"
#include "topology/assembly.h"
#include "topology/validate.h"

namespace nccl_moe::topo::cli {

namespace {
constexpr const char* kHelp =
    "usage: nccl-moe-topo validate FILE\n"
    "\n"
    "Checks a cluster file: cluster JSON (strict schema nccl-moe-cluster v1: unknown keys, wrong\n"
    "types and out-of-range values are errors naming their JSON path), NCCL topology XML, or an\n"
    "hwloc XML export; then the model's consistency (matrix shapes, symmetric links, rails,\n"
    "NUMA ids, NVLink domains). Prints a summary and exits 0, or lists every problem and exits 1.\n";
}  // namespace

int runValidate(const Argv& argv) {
  if (printedHelp(argv, kHelp)) return 0;
  Args args("validate", argv, OptionSpec{{}, {}, 1});
  if (args.positionals().empty()) args.usageError("give the FILE to check");
  const std::string& path = args.positionals().front();
  Cluster cluster = parseClusterText(readFile(path), path);
  std::vector<std::string> problems = findProblems(cluster);
  if (!problems.empty()) {
    std::cout << path << ": invalid: " << problems.size() << " problem" << (problems.size() == 1 ? "" : "s") << "\n";
    for (const auto& problem : problems) std::cout << "  " << problem << "\n";
    return 1;
  }
  size_t nics = 0;
  for (const auto& node : cluster.nodes) nics += node.nics.size();
  std::cout << path << ": valid: " << cluster.nodes.size() << " node" << (cluster.nodes.size() == 1 ? "" : "s")
            << ", " << cluster.gpuCount() << " GPUs, " << nics << " NICs, " << nvlinkDomains(cluster).size()
            << " NVLink domain(s), fingerprint " << fingerprint(cluster) << "\n";
  return 0;
}

}  // namespace nccl_moe::topo::cli
