// NCCL_MOE_* integer variables: a value that is ignored is said, once, even without NCCL_MOE_DEBUG.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "misc/env.h"

namespace nccl_moe::test {
namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(Env, IgnoredValueWarnsOnceByDefault) {
  ASSERT_EQ(std::getenv("NCCL_MOE_DEBUG"), nullptr) << "this test checks the default level";
  setenv("NCCL_MOE_TIMEOUT_MS", "5s", 1);
  testing::internal::CaptureStderr();
  bool rejected = false;
  EXPECT_EQ(envInt("NCCL_MOE_TIMEOUT_MS", params::kTimeoutMs.fallback, 1, 1 << 30, &rejected), params::kTimeoutMs.fallback);
  EXPECT_TRUE(rejected);
  EXPECT_EQ(envTimeoutMs(), params::kTimeoutMs.fallback);  // read on every call: warned about once
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(said, "NCCL_MOE_TIMEOUT_MS=\"5s\""), 1) << said;
  EXPECT_NE(said.find("WARN"), std::string::npos) << said;

  setenv("NCCL_MOE_TIMEOUT_MS", "2500", 1);
  testing::internal::CaptureStderr();
  EXPECT_EQ(envInt("NCCL_MOE_TIMEOUT_MS", params::kTimeoutMs.fallback, 1, 1 << 30, &rejected), 2500);
  EXPECT_FALSE(rejected);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");

  // Another bad value of the same variable is a new mistake: said once more.
  setenv("NCCL_MOE_TIMEOUT_MS", "-1", 1);
  testing::internal::CaptureStderr();
  EXPECT_EQ(envTimeoutMs(), params::kTimeoutMs.fallback);
  EXPECT_EQ(count(testing::internal::GetCapturedStderr(), "NCCL_MOE_TIMEOUT_MS=\"-1\""), 1);
  unsetenv("NCCL_MOE_TIMEOUT_MS");
}

// A numeric default in the documentation is the table's (a changed default must change its
// documentation): every documented variable whose default cell is a number has that default in the
// table, and every variable the table gives a numeric default is documented with that number.
TEST(Env, DocumentedNumericDefaultsAreTheTables) {
  std::map<std::string, std::string> documented;  // variable -> its default cell
  const std::regex row(R"(^\|\s*`(NCCL_MOE_[A-Z_]+)`\s*\|\s*([^|]*?)\s*\|)");
  for (const char* page : {"/docs/environment.md", "/docs/plugin.md"}) {
    std::ifstream doc(std::string(NCCL_MOE_SOURCE_DIR) + page);
    ASSERT_TRUE(doc.good()) << page;
    for (std::string line; std::getline(doc, line);) {
      std::smatch match;
      if (std::regex_search(line, match, row)) documented[match[1]] = match[2];
    }
  }
  const std::regex number(R"(^-?[0-9]+$)");
  const std::regex leadingNumber(R"(^(-?[0-9]+)(\s.*)?$)");  // "0 (no cap)": the number, then words
  const std::regex tableLine(R"(^(\S+)\s+default\s+(\S+))");
  int compared = 0;
  for (const std::string& line : paramTable()) {
    std::smatch match;
    ASSERT_TRUE(std::regex_search(line, match, tableLine)) << line;
    const std::string name = match[1], fallback = match[2];
    const auto doc = documented.find(name);
    ASSERT_NE(doc, documented.end()) << name;
    const bool tableNumeric = std::regex_match(fallback, number);
    std::smatch docNumber;
    const bool docNumeric = std::regex_match(doc->second, docNumber, leadingNumber);
    if (!tableNumeric && !docNumeric) continue;  // words on both sides ("from the plan", "unset")
    EXPECT_EQ(docNumeric ? docNumber[1].str() : doc->second, fallback)
        << name << ": documented default '" << doc->second << "', the table's '" << fallback << "'";
    ++compared;
  }
  EXPECT_GE(compared, 5);  // the integer variables with a fixed default are compared, not skipped
}

}  // namespace
}  // namespace nccl_moe::test

namespace nccl_moe::test {
namespace {

// The one table of variables and the documentation's tables (docs/environment.md, and the tuner
// plugin's in docs/plugin.md) name the same variables: a variable added to the code without its
// documentation (or the other way round) fails here.
TEST(Env, DocsDocumentEveryVariableOfTheTable) {
  std::set<std::string> documented;
  const std::regex row(R"(^\|\s*`(NCCL_MOE_[A-Z_]+)`\s*\|)");
  for (const char* page : {"/docs/environment.md", "/docs/plugin.md"}) {
    std::ifstream doc(std::string(NCCL_MOE_SOURCE_DIR) + page);
    ASSERT_TRUE(doc.good()) << page;
    for (std::string line; std::getline(doc, line);) {
      std::smatch match;
      if (std::regex_search(line, match, row)) documented.insert(match[1]);
    }
  }
  std::set<std::string> declared;
  for (const std::string& line : paramTable()) declared.insert(line.substr(0, line.find(' ')));
  EXPECT_EQ(declared, documented);
}

}  // namespace
}  // namespace nccl_moe::test
