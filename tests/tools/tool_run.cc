#include "tool_run.h"

#include <stdlib.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>

#include "../support/shell_text.h"
#include "tools/bootstrap/rank_layout.h"

namespace nccl_moe::tools {
using test::readFile;
using test::shellQuoted;

ToolRun runTool(const std::string& program, const ToolCall& call) {
  char pattern[] = "/tmp/nccl-moe-tool-test-XXXXXX";
  ToolRun run;
  if (::mkdtemp(pattern) == nullptr) {
    run.err = "runTool: mkdtemp failed";
    return run;
  }
  const std::filesystem::path dir = pattern;
  std::string command = call.shellPrefix + " env";
  for (const char* variable : bootstrap::bootstrapVariables()) command += std::string(" -u ") + variable;
  for (const std::string& variable : call.environment) command += " " + shellQuoted(variable);
  command += " " + shellQuoted(program);
  for (const std::string& argument : call.arguments) command += " " + shellQuoted(argument);
  command += " >" + shellQuoted((dir / "out").string()) + " 2>" + shellQuoted((dir / "err").string());
  const int raw = std::system(command.c_str());
  run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  run.out = readFile(dir / "out");
  run.err = readFile(dir / "err");
  std::filesystem::remove_all(dir);
  return run;
}

std::string helpFor(const std::string& help, const std::string& label) {
  std::istringstream lines(help);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  " + label + "  ", 0) != 0) continue;
    return line.substr(line.find_first_not_of(' ', label.size() + 2));
  }
  return "";
}

std::vector<std::string> rankEnvironment(int rank, int ranks) {
  return {"NCCL_MOE_RANK=" + std::to_string(rank), "NCCL_MOE_NRANKS=" + std::to_string(ranks),
          "NCCL_MOE_LOCAL_RANK=" + std::to_string(rank), "NCCL_MOE_DOMAIN_SIZE=" + std::to_string(ranks),
          // Any 128 bytes decode; no rank here gets as far as using them.
          "NCCL_MOE_UNIQUE_ID=" + std::string(2 * 128, '0')};
}

}  // namespace nccl_moe::tools
