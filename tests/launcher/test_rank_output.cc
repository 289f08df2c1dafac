#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "rank_output.h"
#include "temp_dir.h"
#include "unique_fd.h"

namespace nccl_moe::launcher {
namespace {

std::string readPipe(UniqueFd& fd) {
  std::string text;
  char buffer[4096];
  for (ssize_t got; (got = ::read(fd.get(), buffer, sizeof(buffer))) > 0;) text.append(buffer, got);
  return text;
}

std::string readFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

TEST(LauncherRankOutput, PrefixesWholeLinesAcrossChunks) {
  Pipe echo = makePipe();
  {
    RankOutput output(3, echo.write.get(), "");
    output.append("first li");
    output.append("ne\nsecond\nthi");
    output.append("rd");
    output.finish();
  }
  echo.write.reset();
  EXPECT_EQ(readPipe(echo.read), "[rank 3] first line\n[rank 3] second\n[rank 3] third\n");
}

TEST(LauncherRankOutput, LogFileGetsTheRawBytes) {
  TempDir dir("/tmp", "launcher-test-");
  Pipe echo = makePipe();
  const std::string logPath = dir.path() + "/rank-0.log";
  {
    RankOutput output(0, echo.write.get(), logPath);
    output.append("a\nb");
    output.finish();
  }
  echo.write.reset();
  EXPECT_EQ(readPipe(echo.read), "[rank 0] a\n[rank 0] b\n");
  EXPECT_EQ(readFile(logPath), "a\nb");
}

TEST(LauncherRankOutput, UnwritableLogIsAClearError) {
  try {
    RankOutput output(0, -1, "/nonexistent-dir/rank-0.log");
    FAIL() << "no error";
  } catch (const std::system_error& error) {
    EXPECT_NE(std::string(error.what()).find("cannot create /nonexistent-dir/rank-0.log"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace nccl_moe::launcher
