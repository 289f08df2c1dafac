// The value parsers of tools/common/flags.h: ranges, suffixes, garbage, overflow, and the
// message that names the flag.
#include <gtest/gtest.h>

#include <climits>
#include <string>

#include "tools/common/flags.h"

namespace nccl_moe::tools {
namespace {

// The message of the UsageError `parse` throws; fails the test when it throws none.
template <class Parse>
std::string usageErrorOf(Parse&& parse) {
  try {
    parse();
  } catch (const UsageError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no UsageError";
  return "";
}

TEST(ToolFlags, IntegerTakesTheEndsOfItsRange) {
  EXPECT_EQ(parseInteger("-n", "1", 1, 10), 1);
  EXPECT_EQ(parseInteger("-n", "10", 1, 10), 10);
  EXPECT_EQ(parseInteger("--x", "-5", -10, 10), -5);
  EXPECT_EQ(parseInteger("--seed", "9223372036854775807", 0, LLONG_MAX), LLONG_MAX);
}

TEST(ToolFlags, IntegerOutOfRangeNamesTheFlagAndTheRange) {
  EXPECT_EQ(usageErrorOf([] { parseInteger("-b", "0", 1, 1048576); }), "-b: '0' is out of range, want [1, 1048576]");
  EXPECT_EQ(usageErrorOf([] { parseInteger("-n", "11", 1, 10); }), "-n: '11' is out of range, want [1, 10]");
}

TEST(ToolFlags, IntegerRefusesNegativeWhereTheRangeDoes) {
  EXPECT_EQ(usageErrorOf([] { parseInteger("-w", "-1", 0, 100); }), "-w: '-1' is out of range, want [0, 100]");
}

TEST(ToolFlags, IntegerOverflowIsOutOfRangeNotWrapped) {
  EXPECT_EQ(usageErrorOf([] { parseInteger("-n", "99999999999999999999", 1, 1000); }),
            "-n: '99999999999999999999' is out of range, want [1, 1000]");
  EXPECT_EQ(usageErrorOf([] { parseInteger("-n", "-99999999999999999999", 1, 1000); }),
            "-n: '-99999999999999999999' is out of range, want [1, 1000]");
}

TEST(ToolFlags, IntegerRefusesGarbage) {
  for (const char* text : {"", "abc", "12abc", "1.5", "1e3", "0x10", " 5", "5 ", "+5", "-", "4K"}) {
    EXPECT_EQ(usageErrorOf([&] { parseInteger("--topk", text, 0, 1 << 20); }),
              std::string("--topk: '") + text + "' is not an integer");
  }
}

TEST(ToolFlags, CountTakesBinarySuffixesInEitherCase) {
  EXPECT_EQ(parseCount("-b", "128", 1, LLONG_MAX), 128);
  EXPECT_EQ(parseCount("-b", "4K", 1, LLONG_MAX), 4096);
  EXPECT_EQ(parseCount("-b", "4k", 1, LLONG_MAX), 4096);
  EXPECT_EQ(parseCount("-b", "1M", 1, LLONG_MAX), 1 << 20);
  EXPECT_EQ(parseCount("-b", "2G", 1, LLONG_MAX), 2LL << 30);
  EXPECT_EQ(parseCount("--tokens", "0", 0, 10), 0);
}

TEST(ToolFlags, CountChecksTheRangeAfterTheSuffix) {
  EXPECT_EQ(parseCount("-e", "1M", 1, 1 << 20), 1 << 20);
  EXPECT_EQ(usageErrorOf([] { parseCount("-e", "2M", 1, 1 << 20); }), "-e: '2M' is out of range, want [1, 1M]");
  EXPECT_EQ(usageErrorOf([] { parseCount("-e", "-1K", 1, 1 << 20); }), "-e: '-1K' is out of range, want [1, 1M]");
  EXPECT_EQ(usageErrorOf([] { parseCount("-b", "0K", 1, 1 << 20); }), "-b: '0K' is out of range, want [1, 1M]");
}

TEST(ToolFlags, CountOverflowIsOutOfRange) {
  // The digits overflow, then the digits fit but the product would not (2^33 x 2^30).
  EXPECT_EQ(usageErrorOf([] { parseCount("-b", "99999999999999999999", 1, LLONG_MAX); }),
            "-b: '99999999999999999999' is out of range, want [1, 9223372036854775807]");
  EXPECT_EQ(usageErrorOf([] { parseCount("-b", "8589934592G", 1, LLONG_MAX); }),
            "-b: '8589934592G' is out of range, want [1, 9223372036854775807]");
}

TEST(ToolFlags, CountRefusesGarbage) {
  for (const char* text : {"", "K", "4X", "1KB", "1.5K", "K4", " 4K", "4 K", "4T"}) {
    EXPECT_EQ(usageErrorOf([&] { parseCount("-b", text, 1, LLONG_MAX); }),
              std::string("-b: '") + text + "' is not a count (digits, optionally followed by K, M or G)");
  }
}

TEST(ToolFlags, CountTextUsesTheLargestExactSuffix) {
  EXPECT_EQ(countText(16LL << 30), "16G");
  EXPECT_EQ(countText(1 << 20), "1M");
  EXPECT_EQ(countText(3 << 20), "3M");
  EXPECT_EQ(countText(4096), "4096");
  EXPECT_EQ(countText(0), "0");
  EXPECT_EQ(countText(-(1LL << 30)), "-1G");
}

TEST(ToolFlags, NumberTakesDecimalAndExponentForms) {
  EXPECT_DOUBLE_EQ(parseNumber("--skew", "0.5", 0, 100), 0.5);
  EXPECT_DOUBLE_EQ(parseNumber("--skew", "1e-3", 0, 100), 1e-3);
  EXPECT_DOUBLE_EQ(parseNumber("--skew", "100", 0, 100), 100.0);
  EXPECT_DOUBLE_EQ(parseNumber("--skew", "0", 0, 100), 0.0);
}

TEST(ToolFlags, NumberRefusesOutOfRangeAndNonFinite) {
  EXPECT_EQ(usageErrorOf([] { parseNumber("--skew", "-0.1", 0, 100); }),
            "--skew: '-0.1' is out of range, want [0, 100]");
  EXPECT_EQ(usageErrorOf([] { parseNumber("--skew", "1e999", 0, 100); }),
            "--skew: '1e999' is out of range, want [0, 100]");
  for (const char* text : {"nan", "inf", "-inf", "", "abc", "0.5x", " 1", "0x1p3"}) {
    EXPECT_EQ(usageErrorOf([&] { parseNumber("--skew", text, 0, 100); }),
              std::string("--skew: '") + text + "' is not a finite number");
  }
}

TEST(ToolFlags, ChoiceListsTheChoicesWhenRefused) {
  EXPECT_EQ(parseChoice("--layout", "expert-major", {"per-rank", "expert-major"}), "expert-major");
  EXPECT_EQ(usageErrorOf([] { parseChoice("--layout", "Per-Rank", {"per-rank", "expert-major"}); }),
            "--layout: 'Per-Rank' is not one of per-rank, expert-major");
}

TEST(ToolFlags, VersionTextOfAVersionCode) {
  EXPECT_EQ(versionText(10203), "1.2.3");
  EXPECT_EQ(versionText(22105), "2.21.5");
  EXPECT_EQ(versionText(100), "0.1.0");
}

}  // namespace
}  // namespace nccl_moe::tools
