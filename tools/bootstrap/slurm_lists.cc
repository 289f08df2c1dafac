#include "tools/bootstrap/slurm_lists.h"

#include <sstream>

#include "nccl_moe_bootstrap.h"
#include "tools/bootstrap/environment.h"

namespace nccl_moe::bootstrap {
namespace {

constexpr int kMaxTasksOnOneNode = 1 << 20;
constexpr int kMaxNodes = 1 << 20;

std::vector<std::string> splitAt(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, separator);) parts.push_back(part);
  if (!text.empty() && text.back() == separator) parts.push_back("");
  return parts;
}

}  // namespace

std::vector<int> expandTasksPerNode(const std::string& name, const std::string& text) {
  std::vector<int> perNode;
  for (const std::string& entry : splitAt(text, ',')) {
    const std::string what = "'" + entry + "' of " + name + "='" + text + "' (entries are N or N(xM))";
    try {
      const size_t open = entry.find("(x");
      if (open == std::string::npos) {
        perNode.push_back(parseInt(entry, 1, kMaxTasksOnOneNode, "tasks"));
        continue;
      }
      if (entry.back() != ')') throw BootstrapError("no closing parenthesis");
      const int tasks = parseInt(entry.substr(0, open), 1, kMaxTasksOnOneNode, "tasks");
      const int nodes = parseInt(entry.substr(open + 2, entry.size() - open - 3), 1, kMaxNodes, "nodes");
      if (perNode.size() + nodes > static_cast<size_t>(kMaxNodes)) throw BootstrapError("too many nodes");
      perNode.insert(perNode.end(), nodes, tasks);
    } catch (const BootstrapError&) {
      throw BootstrapError("cannot read the entry " + what);
    }
  }
  if (perNode.empty()) throw BootstrapError(name + " is empty");
  return perNode;
}

std::string firstHostOf(const std::string& name, const std::string& text) {
  std::string host;
  size_t at = 0;
  while (at < text.size() && text[at] != ',') {
    if (text[at] != '[') {
      host += text[at++];
      continue;
    }
    const size_t close = text.find(']', at);
    if (close == std::string::npos) throw BootstrapError(name + "='" + text + "' has a '[' without ']'");
    const size_t end = text.find_first_of(",-]", at + 1);
    host += text.substr(at + 1, end - at - 1);
    at = close + 1;
  }
  if (host.empty()) throw BootstrapError(name + "='" + text + "' names no host");
  return host;
}

}  // namespace nccl_moe::bootstrap
