// On a GPU: an unmodified NCCL program (nccl-moe-plugin-probe) under nccl-moe-run with
// NCCL_TUNER_PLUGIN set to the plugin name. NCCL's own log must say it loaded nccl-moe, carry the
// init summary, and, with NCCL_MOE_NCCL_MAX_CHANNELS, show no collective using more channels.
// Skipped without a GPU (CI).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "machine_probes.h"
#include "plugin_test_paths.h"

namespace nccl_moe {
namespace {

struct ProbeRun {
  int exitCode = -1;
  std::string output;
};

// Two ranks on the one GPU (two virtual nodes). NCCL_MIN_NCHANNELS=4 makes NCCL's own choice
// wide enough that a cap of 2 is visible.
ProbeRun runProbe(const std::string& extraEnv) {
  const std::string log = ::testing::TempDir() + "nccl_moe_plugin_gpu.log";
  const std::string command =
      "env NCCL_TUNER_PLUGIN=" + std::string(kPluginLinkPath) +
      " NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,TUNING,ENV NCCL_NVLS_ENABLE=0 NCCL_MIN_NCHANNELS=4 " +
      extraEnv + " " + kNcclMoeRunPath + " -np 2 --gpus 1 --timeout 180 " + kPluginProbePath + " > " +
      log + " 2>&1";
  ProbeRun run;
  const int status = std::system(command.c_str());
  run.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  run.output = text.str();
  return run;
}

// The largest channelHi NCCL logged for any collective ("channel{Lo..Hi}={0..3}"), -1 if none.
int widestChannel(const std::string& output) {
  static const std::regex line(R"(channel\{Lo\.\.Hi\}=\{(\d+)\.\.(\d+)\})");
  int widest = -1;
  for (std::sregex_iterator it(output.begin(), output.end(), line), end; it != end; ++it) {
    widest = std::max(widest, std::stoi((*it)[2]));
  }
  return widest;
}

class PluginGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (launcher::countVisibleGpus() == 0) GTEST_SKIP() << "no GPU";
  }
};

TEST_F(PluginGpu, NcclLoadsThePluginIntoAnUnmodifiedProgram) {
  const ProbeRun run = runProbe("");
  ASSERT_EQ(run.exitCode, 0) << run.output;
  EXPECT_TRUE(std::regex_search(run.output, std::regex(R"(TUNER/Plugin: Using nccl-moe \(v[56]\))"))) << run.output;
  EXPECT_NE(run.output.find("nccl-moe tuner (v"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("NCCL channels left to NCCL"), std::string::npos) << run.output;
  std::printf("without a cap NCCL used channels 0..%d\n", widestChannel(run.output));
}

TEST_F(PluginGpu, CollectivesStayWithinTheCap) {
  const ProbeRun uncapped = runProbe("");
  const ProbeRun capped = runProbe("NCCL_MOE_NCCL_MAX_CHANNELS=2");
  ASSERT_EQ(capped.exitCode, 0) << capped.output;
  EXPECT_NE(capped.output.find("capped at 2 channels"), std::string::npos) << capped.output;
  const int widest = widestChannel(capped.output);
  ASSERT_GE(widest, 0) << "no channel{Lo..Hi} lines in NCCL's log:\n" << capped.output;
  EXPECT_LE(widest, 1) << capped.output;
  std::printf("channels used: uncapped 0..%d, capped 0..%d\n", widestChannel(uncapped.output), widest);
}

}  // namespace
}  // namespace nccl_moe
