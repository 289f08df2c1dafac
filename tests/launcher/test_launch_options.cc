#include <gtest/gtest.h>

#include "launch_options.h"

namespace nccl_moe::launcher {
namespace {

using Args = std::vector<std::string>;

std::string usageErrorOf(const Args& args) {
  try {
    parseLaunchOptions(args);
  } catch (const UsageError& error) {
    return error.what();
  }
  return "no error";
}

TEST(LauncherOptions, MinimalCommandLine) {
  const LaunchOptions options = parseLaunchOptions({"-np", "4", "prog", "-x", "--y=1"});
  EXPECT_EQ(options.ranks, 4);
  EXPECT_FALSE(options.domainSize);
  EXPECT_FALSE(options.gpus);
  EXPECT_FALSE(options.mps);
  EXPECT_FALSE(options.timeoutSeconds);
  EXPECT_EQ(options.failGraceSeconds, 30);
  EXPECT_EQ(options.killGraceSeconds, 10);
  EXPECT_EQ(options.hostIdMode, HostIdMode::kAuto);
  EXPECT_EQ(options.program, (Args{"prog", "-x", "--y=1"}));
}

TEST(LauncherOptions, EveryOption) {
  const LaunchOptions options = parseLaunchOptions(
      {"-n", "8", "--domain-size", "4", "--gpus=2", "--mps", "--timeout", "1.5", "--fail-grace",
       "0", "--kill-grace=0.25", "--output-dir", "logs", "--hostid", "domain", "--override-env",
       "--", "--prog-with-dashes", "a"});
  EXPECT_EQ(options.ranks, 8);
  EXPECT_EQ(options.domainSize, 4);
  EXPECT_EQ(options.gpus, 2);
  EXPECT_TRUE(options.mps);
  EXPECT_EQ(options.timeoutSeconds, 1.5);
  EXPECT_EQ(options.failGraceSeconds, 0);
  EXPECT_EQ(options.killGraceSeconds, 0.25);
  EXPECT_EQ(options.outputDir, "logs");
  EXPECT_EQ(options.hostIdMode, HostIdMode::kPerDomain);
  EXPECT_TRUE(options.overrideEnvironment);
  EXPECT_EQ(options.program, (Args{"--prog-with-dashes", "a"}));
}

TEST(LauncherOptions, NodesGiveTheDomainSize) {
  EXPECT_EQ(parseLaunchOptions({"--np=8", "--nodes", "2", "p"}).domainSize, 4);
  EXPECT_EQ(parseLaunchOptions({"-np", "6", "--nodes", "6", "p"}).domainSize, 1);
}

TEST(LauncherOptions, HelpNeedsNothingElse) {
  EXPECT_TRUE(parseLaunchOptions({"--help"}).help);
  EXPECT_TRUE(parseLaunchOptions({"-h"}).help);
  EXPECT_NE(usageText().find("-np N"), std::string::npos);
}

TEST(LauncherOptions, VersionNeedsNothingElse) {
  EXPECT_TRUE(parseLaunchOptions({"--version"}).version);
  EXPECT_FALSE(parseLaunchOptions({"--help"}).version);
  EXPECT_NE(usageText().find("--version"), std::string::npos);
  EXPECT_EQ(usageErrorOf({"--version=1"}), "--version takes no value, got '--version=1'");
}

TEST(LauncherOptions, ErrorsSayWhatIsWrong) {
  EXPECT_EQ(usageErrorOf({"prog"}), "-np N is required (the number of ranks to start)");
  EXPECT_EQ(usageErrorOf({"-np", "2"}), "no program given to run on each rank");
  EXPECT_EQ(usageErrorOf({"-np", "0", "p"}), "-np expects an integer >= 1, got '0'");
  EXPECT_EQ(usageErrorOf({"-np", "2x", "p"}), "-np expects an integer >= 1, got '2x'");
  EXPECT_EQ(usageErrorOf({"-np", "-3", "p"}), "-np expects an integer >= 1, got '-3'");
  EXPECT_EQ(usageErrorOf({"-np", "99999999999999999999", "p"}),
            "-np 99999999999999999999 is larger than 65536");
  EXPECT_EQ(usageErrorOf({"-np"}), "-np needs a value");
  EXPECT_EQ(usageErrorOf({"-np", "2", "--frobnicate", "p"}), "unknown option '--frobnicate'");
  EXPECT_EQ(usageErrorOf({"-np", "2", "--mps=yes", "p"}), "--mps takes no value, got '--mps=yes'");
  EXPECT_EQ(usageErrorOf({"-np", "6", "--nodes", "4", "p"}), "--nodes 4 does not divide -np 6");
  EXPECT_EQ(usageErrorOf({"-np", "6", "--domain-size", "4", "p"}),
            "--domain-size 4 does not divide -np 6");
  EXPECT_EQ(usageErrorOf({"-np", "4", "--domain-size", "2", "--nodes", "2", "p"}),
            "--domain-size and --nodes both set the NVLink domain size; give one");
  EXPECT_EQ(usageErrorOf({"-np", "2", "--timeout", "0", "p"}),
            "--timeout expects seconds (a number > 0), got '0'");
  EXPECT_EQ(usageErrorOf({"-np", "2", "--fail-grace", "-1", "p"}),
            "--fail-grace expects seconds (a number >= 0), got '-1'");
  EXPECT_EQ(usageErrorOf({"-np", "2", "--kill-grace", "nan", "p"}),
            "--kill-grace expects seconds (a number >= 0), got 'nan'");
  EXPECT_EQ(usageErrorOf({"-np", "2", "--hostid", "node", "p"}),
            "--hostid expects auto, rank, domain or none, got 'node'");
  EXPECT_EQ(usageErrorOf({"-np", "2", "--output-dir=", "p"}),
            "--output-dir needs a non-empty directory name");
}

}  // namespace
}  // namespace nccl_moe::launcher
