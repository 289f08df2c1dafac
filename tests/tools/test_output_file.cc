// OutputFile and checkWritable: a path that cannot be written is refused when opened, with the
// path and strerror; a write that fails later is reported by close().
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tools/common/flags.h"
#include "tools/common/output_file.h"

namespace nccl_moe::tools {
namespace {

class ToolOutputFile : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("nccl-moe-output-file-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string read(const std::string& path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }
  std::filesystem::path dir_;
};

// The message of the exception of type E that `body` throws; fails the test when it throws none.
template <class E, class Body>
std::string messageOf(Body&& body) {
  try {
    body();
  } catch (const E& error) {
    return error.what();
  }
  ADD_FAILURE() << "nothing thrown";
  return "";
}

TEST_F(ToolOutputFile, WritesAndClosesATruncatedFile) {
  std::ofstream(path("out.json")) << "an older, longer result";
  OutputFile file = OutputFile::create("--json", path("out.json"));
  ASSERT_TRUE(file);
  std::fputs("{}\n", file.get());
  file.close();
  EXPECT_FALSE(file);
  EXPECT_EQ(read(path("out.json")), "{}\n");
}

TEST_F(ToolOutputFile, NoFlagNoFile) {
  OutputFile none;
  EXPECT_FALSE(none);
  none.close();  // nothing to do
}

TEST_F(ToolOutputFile, MissingDirectoryNamesTheFlagPathAndReason) {
  const std::string missing = path("no-such-dir/out.json");
  EXPECT_EQ(messageOf<UsageError>([&] { OutputFile::create("--json", missing); }),
            "--json: cannot write '" + missing + "': No such file or directory");
}

TEST_F(ToolOutputFile, ADirectoryIsNotAFile) {
  EXPECT_EQ(messageOf<UsageError>([&] { OutputFile::create("--json", dir_.string()); }),
            "--json: cannot write '" + dir_.string() + "': Is a directory");
}

TEST_F(ToolOutputFile, CloseReportsAWriteThatFailed) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  OutputFile file = OutputFile::create("--json", "/dev/full");
  std::fputs("{}\n", file.get());  // buffered: the failure shows at the flush
  EXPECT_EQ(messageOf<std::runtime_error>([&] { file.close(); }),
            "cannot write '/dev/full': No space left on device");
}

TEST_F(ToolOutputFile, CheckWritableLeavesTheFileAlone) {
  std::ofstream(path("kept.json")) << "rank 0's result";
  checkWritable("--json", path("kept.json"));
  EXPECT_EQ(read(path("kept.json")), "rank 0's result");
  const std::string missing = path("no-such-dir/out.json");
  EXPECT_EQ(messageOf<UsageError>([&] { checkWritable("--json", missing); }),
            "--json: cannot write '" + missing + "': No such file or directory");
}

}  // namespace
}  // namespace nccl_moe::tools
