// FlagSet: flags bound to fields, the command-line forms it reads, its errors and its --help.
#include <gtest/gtest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "tool_run.h"
#include "tools/common/flags.h"

namespace nccl_moe::tools {
namespace {

struct Fields {
  int tokens = 128;
  int iters = 20;
  uint64_t seed = 1;
  double skew = 0.0;
  std::string layout = "per-rank";
  bool fp8 = false;
  std::string json;
};

class ToolFlagSet : public testing::Test {
 protected:
  ToolFlagSet() : flags_({"nccl-moe-x", "nccl-moe-x [flags]", "About the program.", "1.2.3"}) {
    flags_.count("-b", "smallest tokens", &fields_.tokens, 1, 1 << 20);
    flags_.integer("-n", "timed iterations", &fields_.iters, 1, 1000);
    flags_.integer("--seed", "seed", &fields_.seed, 0, 1000000);
    flags_.number("--skew", "routing skew", &fields_.skew, 0, 100);
    flags_.choice("--layout", "layout", &fields_.layout, {"per-rank", "expert-major"});
    flags_.toggle("--fp8", "FP8 dispatch", &fields_.fp8);
    flags_.text("--json", "FILE", "JSON output", &fields_.json);
  }

  ParseOutcome parse(std::vector<const char*> arguments) {
    arguments.insert(arguments.begin(), "nccl-moe-x");
    return flags_.parse(static_cast<int>(arguments.size()), arguments.data(), out_);
  }

  std::string usageErrorOf(std::vector<const char*> arguments) {
    try {
      parse(arguments);
    } catch (const UsageError& error) {
      return error.what();
    }
    ADD_FAILURE() << "no UsageError";
    return "";
  }

  Fields fields_;
  FlagSet flags_;
  std::ostringstream out_;
};

TEST_F(ToolFlagSet, NothingGivenKeepsTheDefaults) {
  EXPECT_EQ(parse({}), ParseOutcome::kRun);
  EXPECT_EQ(fields_.tokens, 128);
  EXPECT_EQ(fields_.layout, "per-rank");
  EXPECT_FALSE(fields_.fp8);
}

TEST_F(ToolFlagSet, LongFlagsTakeAnAttachedValue) {
  EXPECT_EQ(parse({"--seed=7", "--skew=0.5", "--layout=expert-major", "--json=out.json", "--fp8", "-n", "5"}),
            ParseOutcome::kRun);
  EXPECT_EQ(fields_.seed, 7u);
  EXPECT_DOUBLE_EQ(fields_.skew, 0.5);
  EXPECT_EQ(fields_.layout, "expert-major");
  EXPECT_EQ(fields_.json, "out.json");
  EXPECT_TRUE(fields_.fp8);
  EXPECT_EQ(fields_.iters, 5);
}

TEST_F(ToolFlagSet, ShortFlagWithAnEqualsSignIsUnknown) {
  EXPECT_EQ(usageErrorOf({"-n=5"}), "unknown flag '-n=5' (nccl-moe-x --help lists the flags)");
}

TEST_F(ToolFlagSet, UnknownFlagAndStrayArgument) {
  EXPECT_EQ(usageErrorOf({"--bogus"}), "unknown flag '--bogus' (nccl-moe-x --help lists the flags)");
  EXPECT_EQ(usageErrorOf({"-n", "5", "extra"}), "unexpected argument 'extra' (nccl-moe-x --help lists the flags)");
}

TEST_F(ToolFlagSet, MissingValueAtTheEndOrBeforeAnotherFlag) {
  EXPECT_EQ(usageErrorOf({"-n"}), "-n needs a value (N)");
  EXPECT_EQ(usageErrorOf({"--json", "--fp8"}), "--json needs a value (FILE)");
  EXPECT_EQ(usageErrorOf({"--json", "--help"}), "--json needs a value (FILE)");
  EXPECT_EQ(usageErrorOf({"--layout"}), "--layout needs a value (LAYOUT)");
}

TEST_F(ToolFlagSet, NegativeNumberIsAValueNotAFlag) {
  EXPECT_EQ(usageErrorOf({"-n", "-3"}), "-n: '-3' is out of range, want [1, 1000]");
}

TEST_F(ToolFlagSet, BadValuesNameTheFlag) {
  EXPECT_EQ(usageErrorOf({"-b", "0"}), "-b: '0' is out of range, want [1, 1M]");
  EXPECT_EQ(usageErrorOf({"--seed", "-1"}), "--seed: '-1' is out of range, want [0, 1000000]");
  EXPECT_EQ(usageErrorOf({"--skew", "nan"}), "--skew: 'nan' is not a finite number");
  EXPECT_EQ(usageErrorOf({"--layout", "both"}), "--layout: 'both' is not one of per-rank, expert-major");
  EXPECT_EQ(usageErrorOf({"--json", ""}), "--json needs a non-empty FILE");
  EXPECT_EQ(usageErrorOf({"--fp8=1"}), "--fp8 takes no value");
}

TEST_F(ToolFlagSet, HelpListsEveryFlagWithItsRangeAndDefault) {
  EXPECT_EQ(parse({"-n", "5", "--help"}), ParseOutcome::kAnswered);
  const std::string help = flags_.help();
  EXPECT_EQ(out_.str(), help);
  EXPECT_EQ(help.rfind("usage: nccl-moe-x [flags]\n", 0), 0u) << help;
  EXPECT_EQ(helpFor(help, "-b N"), "smallest tokens, in [1, 1M], K/M/G suffixes (default 128)");
  EXPECT_EQ(helpFor(help, "-n N"), "timed iterations, in [1, 1000] (default 20)");
  EXPECT_EQ(helpFor(help, "--seed N"), "seed, in [0, 1000000] (default 1)");
  EXPECT_EQ(helpFor(help, "--skew X"), "routing skew, in [0, 100] (default 0)");
  EXPECT_EQ(helpFor(help, "--layout LAYOUT"), "layout, one of per-rank, expert-major (default per-rank)");
  EXPECT_EQ(helpFor(help, "--fp8"), "FP8 dispatch");
  EXPECT_EQ(helpFor(help, "--json FILE"), "JSON output");
  EXPECT_EQ(helpFor(help, "-h, --help"), "print this help");
  EXPECT_EQ(helpFor(help, "--version"), "print the version");
  EXPECT_NE(help.find("\nAbout the program.\n"), std::string::npos) << help;
}

TEST_F(ToolFlagSet, VersionPrintsTheProgramAndItsVersion) {
  EXPECT_EQ(parse({"--version"}), ParseOutcome::kAnswered);
  EXPECT_EQ(out_.str(), "nccl-moe-x 1.2.3\n");
}

TEST_F(ToolFlagSet, GivenTellsWhichFlagsTheCommandLineSet) {
  EXPECT_EQ(parse({"-b", "128", "--fp8", "--layout=expert-major"}), ParseOutcome::kRun);
  EXPECT_TRUE(flags_.given("-b"));  // set, even to the default value
  EXPECT_TRUE(flags_.given("--fp8"));
  EXPECT_TRUE(flags_.given("--layout"));
  EXPECT_FALSE(flags_.given("-n"));
  EXPECT_FALSE(flags_.given("--unknown"));
  // Each parse starts afresh.
  EXPECT_EQ(parse({"-n", "3"}), ParseOutcome::kRun);
  EXPECT_FALSE(flags_.given("-b"));
  EXPECT_TRUE(flags_.given("-n"));
}

TEST_F(ToolFlagSet, AChoiceMayNameItsValue) {
  std::string type = "bf16";
  flags_.choice("-d", "row type", &type, {"bf16", "fp32"}, "TYPE");
  EXPECT_EQ(helpFor(flags_.help(), "-d TYPE"), "row type, one of bf16, fp32 (default bf16)");
  EXPECT_EQ(usageErrorOf({"-d"}), "-d needs a value (TYPE)");
  EXPECT_EQ(parse({"-d", "fp32"}), ParseOutcome::kRun);
  EXPECT_EQ(type, "fp32");
}

TEST_F(ToolFlagSet, ADefinitionMistakeIsALogicError) {
  int small = 0;
  EXPECT_THROW(flags_.integer("-n", "again", &small, 0, 1), std::logic_error);
  EXPECT_THROW(flags_.integer("--wide", "wider than int", &small, 0, 1LL << 40), std::logic_error);
  EXPECT_THROW(flags_.integer("--empty", "min above max", &small, 2, 1), std::logic_error);
}

}  // namespace
}  // namespace nccl_moe::tools
