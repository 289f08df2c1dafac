#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "child_process.h"
#include "environment_block.h"
#include "poll_wait.h"

namespace nccl_moe::launcher {
namespace {

ChildSpec shell(const std::string& script) {
  return ChildSpec{"/bin/sh", {"sh", "-c", script}, {"PATH=/usr/bin:/bin", "GREETING=hello"}};
}

// Waits (bounded) until the child has ended.
ExitStatus waitFor(ChildProcess& child) {
  for (int i = 0; i < 500 && !child.tryReap(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(child.status().has_value());
  return child.status().value_or(ExitStatus{true, 0});
}

std::string readAll(ChildProcess& child) {
  std::string text;
  char buffer[4096];
  for (ssize_t got; (got = ::read(child.output().get(), buffer, sizeof(buffer))) > 0;) {
    text.append(buffer, got);
  }
  return text;
}

TEST(LauncherChildProcess, RunsWithExactlyTheGivenEnvironmentAndCapturesBothStreams) {
  ChildProcess child = ChildProcess::spawn(shell("echo $GREETING; echo oops >&2; exit 4"));
  EXPECT_EQ(readAll(child), "hello\noops\n");
  const ExitStatus status = waitFor(child);
  EXPECT_FALSE(status.bySignal);
  EXPECT_EQ(status.value, 4);
  EXPECT_EQ(status.describe(), "exit 4");
}

TEST(LauncherChildProcess, StdinIsDevNullUnlessPiped) {
  ChildProcess child = ChildProcess::spawn(shell("cat; echo end"));
  EXPECT_EQ(readAll(child), "end\n");
  waitFor(child);

  ChildSpec piped = shell("cat");
  piped.pipeInput = true;
  ChildProcess echo = ChildProcess::spawn(piped);
  ASSERT_EQ(::write(echo.input().get(), "quit\n", 5), 5);
  echo.input().reset();
  EXPECT_EQ(readAll(echo), "quit\n");
  EXPECT_TRUE(waitFor(echo).success());
}

TEST(LauncherChildProcess, MissingProgramIsASpawnError) {
  try {
    ChildProcess::spawn(ChildSpec{"/nonexistent/prog", {"prog"}, {}});
    FAIL() << "no error";
  } catch (const SpawnError& error) {
    EXPECT_EQ(std::string(error.what()),
              "cannot execute '/nonexistent/prog': No such file or directory");
  }
}

TEST(LauncherChildProcess, SignalReachesTheWholeGroup) {
  // The shell's own child (sleep) must die too, or the pipe would stay open.
  ChildProcess child = ChildProcess::spawn(shell("sleep 30 & wait"));
  child.signalGroup(SIGTERM);
  const ExitStatus status = waitFor(child);
  EXPECT_TRUE(status.bySignal);
  EXPECT_EQ(status.value, SIGTERM);
  EXPECT_EQ(status.shellCode(), 128 + SIGTERM);
  EXPECT_EQ(readAll(child), "");  // end of file: nobody holds the pipe any more
}

TEST(LauncherChildProcess, DestructorKillsAndReapsARunningChild) {
  pid_t pid;
  {
    ChildProcess child = ChildProcess::spawn(shell("sleep 30"));
    pid = child.pid();
  }
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);  // already reaped: not our child any more
  EXPECT_EQ(errno, ECHILD);
}

TEST(LauncherPollWait, DeadlinePassesWithoutEvents) {
  Pipe pipe = makePipe();
  std::vector<pollfd> entries{{pipe.read.get(), POLLIN, 0}};
  const auto start = Clock::now();
  EXPECT_EQ(pollUntil(entries, deadlineAfter(0.05)), 0);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(50));
}

TEST(LauncherEnvironmentBlock, ParsesAndListsEntries) {
  const auto block = EnvironmentBlock::fromEntries({"B=2", "A=x=y", "=bad", "noequals", "E="});
  EXPECT_EQ(block.get("A"), "x=y");
  EXPECT_EQ(block.get("E"), "");
  EXPECT_FALSE(block.contains("noequals"));
  EXPECT_EQ(block.entries(), (std::vector<std::string>{"A=x=y", "B=2", "E="}));
}

}  // namespace
}  // namespace nccl_moe::launcher
