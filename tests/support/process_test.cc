#include "tests/support/process.h"

#include <signal.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace ablate::test {
namespace {

std::unique_ptr<Subprocess> Shell(const std::string& script,
                                  const std::map<std::string, std::string>& env = {}) {
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start({"sh", "-c", script}, env);
  EXPECT_TRUE(process.ok()) << process.status();
  return process.ok() ? *std::move(process) : nullptr;
}

TEST(SubprocessTest, CapturesOutputAndExitCode) {
  auto p = Shell("echo out; echo err >&2; exit 3");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->WaitFor(absl::Seconds(10)).value_or(-1), 3);
  EXPECT_EQ(p->Stdout(), "out\n");
  EXPECT_EQ(p->Stderr(), "err\n");
}

TEST(SubprocessTest, AddsToTheEnvironment) {
  auto p = Shell("echo \"$ABLATE_TEST_VAR:${PATH:+path}\"", {{"ABLATE_TEST_VAR", "x"}});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->WaitFor(absl::Seconds(10)).value_or(-1), 0);
  EXPECT_EQ(p->Stdout(), "x:path\n");
}

TEST(SubprocessTest, LargeOutputNeverBlocksTheChild) {
  auto p = Shell("head -c 1000000 /dev/zero");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->WaitFor(absl::Seconds(10)).value_or(-1), 0);
  EXPECT_EQ(p->Stdout().size(), 1000000u);
}

TEST(SubprocessTest, WaitIsBoundedAndSignalsEndIt) {
  auto p = Shell("sleep 30");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->WaitFor(absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  p->Signal(SIGTERM);
  EXPECT_EQ(p->WaitFor(absl::Seconds(10)).value_or(-1), 128 + SIGTERM);
  EXPECT_EQ(p->WaitFor(absl::ZeroDuration()).value_or(-1), 128 + SIGTERM);
}

TEST(SubprocessTest, MissingProgramFailsToStart) {
  EXPECT_FALSE(Subprocess::Start({"/nonexistent/ablate-no-such-program"}).ok());
  EXPECT_FALSE(Subprocess::Start({}).ok());
}

TEST(ReadPortsFileTest, WaitsForEveryName) {
  absl::StatusOr<std::string> dir = MakeTempDir();
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string path = *dir + "/ports";
  std::ofstream(path) << "grpc=7070\nhttp=80";  // the http line is not finished yet
  EXPECT_EQ(ReadPortsFile(path, absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  std::ofstream(path) << "grpc=7070\nhttp=8080\n";
  absl::StatusOr<std::map<std::string, int>> ports = ReadPortsFile(path, absl::Seconds(5));
  ASSERT_TRUE(ports.ok()) << ports.status();
  EXPECT_EQ(ports->at("grpc"), 7070);
  EXPECT_EQ(ports->at("http"), 8080);
  std::filesystem::remove_all(*dir);
}

TEST(UnusedLoopbackPortTest, IsAPort) {
  absl::StatusOr<int> port = UnusedLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_GT(*port, 0);
  EXPECT_LT(*port, 65536);
}

}  // namespace
}  // namespace ablate::test
