// --version on every command-line tool: the nccl-moe version and the NCCL one, "name X.Y.Z (NCCL
// A.B.C)" (nccl-moe-topo, which does not load NCCL, names the headers it was built with).
#include <gtest/gtest.h>
#include <nccl.h>

#include <string>

#include "nccl_moe.h"
#include "tool_run.h"
#include "tool_test_paths.h"
#include "tools/common/flags.h"
#include "tools/common/version.h"

namespace nccl_moe::tools {
namespace {

void expectVersion(const char* path, const std::string& name, const std::string& nccl) {
  const ToolRun run = runTool(path, {{"--version"}, {}, ""});
  EXPECT_EQ(run.status, 0) << name << ": " << run.err;
  EXPECT_EQ(run.err, "") << name;
  EXPECT_EQ(run.out, name + " " + versionText(NCCL_MOE_VERSION_CODE) + " (NCCL " + nccl + ")\n");
}

// The tools that link NCCL print the version of the library they loaded; here that is the one
// this test loaded too (the same libnccl on the same path).
std::string loadedNccl() {
  int code = 0;
  return ncclGetVersion(&code) == ncclSuccess ? ncclVersionText(code) : "unknown";
}

TEST(ToolVersionCli, Perf) { expectVersion(kNcclMoePerfPath, "nccl-moe-perf", loadedNccl()); }

TEST(ToolVersionCli, Demo) { expectVersion(kNcclMoeDemoPath, "nccl-moe-demo", loadedNccl()); }

TEST(ToolVersionCli, Run) { expectVersion(kNcclMoeRunPath, "nccl-moe-run", loadedNccl()); }

TEST(ToolVersionCli, Topo) {
  expectVersion(kNcclMoeTopoPath, "nccl-moe-topo", ncclVersionText(NCCL_VERSION_CODE) + ", built with its headers");
}

TEST(ToolVersionCli, RunAnswersVersionWithoutStartingTheProgram) {
  // As --help: -np and the program need not be valid, and nothing is started.
  const ToolRun run = runTool(kNcclMoeRunPath, {{"--version", "-np", "2", "false"}, {}, ""});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out.rfind("nccl-moe-run ", 0), 0u);
}

}  // namespace
}  // namespace nccl_moe::tools
