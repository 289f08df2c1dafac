#include "output.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include "topology/error.h"
#include "topology/json_io.h"
#include "topology/nccl_xml.h"
#include "topology/text_view.h"

namespace nccl_moe::topo::cli {

void emit(const Args& args, const std::string& text) {
  auto path = args.value("--output");
  if (!path) path = args.value("-o");
  if (!path) {
    std::cout << text << std::flush;
    return;
  }
  std::ofstream file(*path, std::ios::binary);
  if (!file || !(file << text)) fail(*path, ": cannot write: ", std::strerror(errno));
}

void emitCluster(const Args& args, const Cluster& cluster) {
  if (args.flag("--json") && args.flag("--xml")) args.usageError("--json and --xml exclude each other");
  if (args.flag("--json")) {
    emit(args, toJsonText(cluster));
  } else if (args.flag("--xml")) {
    emit(args, toNcclXmlText(cluster));
  } else {
    emit(args, renderCluster(cluster));
  }
}

}  // namespace nccl_moe::topo::cli
