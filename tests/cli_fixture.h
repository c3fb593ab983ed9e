// The fixtures of the `ablate` binary's tests (cli_test.cc: each kind of mistake;
// cli_coordinator_test.cc: each command against a real coordinator): the binary run as a user
// runs it, in a temporary folder, against an address nothing listens on or a real coordinator.
#ifndef ABLATE_TESTS_CLI_FIXTURE_H_
#define ABLATE_TESTS_CLI_FIXTURE_H_

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "ablate/v1/plan.pb.h"
#include "ablate/v1/results.pb.h"
#include "ablate/v1/sweep_service.pb.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

namespace ablate::cli_test {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The CLI processes the test starts send the user token.
    setenv("ABLATE_TOKEN", test::kUserToken, 1);
    absl::StatusOr<std::string> bin_dir = test::BinDir();
    ASSERT_TRUE(bin_dir.ok()) << bin_dir.status();
    ablate_ = absl::StrCat(*bin_dir, "/ablate");
    absl::StatusOr<std::string> dir = test::MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    // Nothing listens here, so a command that got past its local checks fails to connect.
    absl::StatusOr<int> port = test::UnusedLoopbackPort();
    ASSERT_TRUE(port.ok()) << port.status();
    unreachable_ = absl::StrCat("127.0.0.1:", *port);
  }

  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream(path) << text;
    return path;
  }

  // Runs `ablate args...` with ABLATE_COORDINATOR set as given; an unreachable coordinator
  // must still end the command within a few seconds.
  Result Run(const std::vector<std::string>& args, const std::string& coordinator_env = "") {
    std::vector<std::string> argv = {ablate_};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<std::unique_ptr<test::Subprocess>> process =
        test::Subprocess::Start(argv, {{"ABLATE_COORDINATOR", coordinator_env}});
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return {};
    absl::StatusOr<int> code = (*process)->WaitFor(absl::Seconds(15));
    EXPECT_TRUE(code.ok()) << code.status();
    return {code.ok() ? *code : -1, (*process)->Stdout(), (*process)->Stderr()};
  }

  std::string ablate_;
  std::string dir_;
  std::string unreachable_;
};

// Polls `done` every 50 ms until it holds or `timeout` passes.
inline bool Eventually(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

// One line: the error, ended by a newline, and nothing else.
MATCHER(IsOneLine, "is exactly one newline-terminated line") {
  return !arg.empty() && arg.find('\n') == arg.size() - 1;
}

inline constexpr char kValidSweep[] = R"(name: cli-test
grid:
  seed: [1, 2]
fixed:
  steps: 10
)";

// The commands that talk to a coordinator, against the real one. No worker joins, so jobs stay
// pending until the test cancels them.
class CliCoordinatorTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (HasFatalFailure()) return;
    absl::StatusOr<std::unique_ptr<test::TestCoordinator>> coordinator =
        test::TestCoordinator::Start(*test::BinDir(), dir_);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
  }

  void TearDown() override {
    coordinator_.reset();
    CliTest::TearDown();
  }

  Result Ablate(std::vector<std::string> args) {
    args.insert(args.begin(), {"--coordinator", coordinator_->grpc_address()});
    return Run(args);
  }

  // Submits the two-job sweep and returns its id.
  std::string Submit() {
    const Result r = Ablate({"submit", WriteFile("ok.yaml", kValidSweep)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::smatch match;
    EXPECT_TRUE(std::regex_search(
        r.out, match, std::regex(R"((?:^|\n)submitted sweep (\S+): 2 jobs; 0 cells excluded)")))
        << r.out;
    // The plan comes first, then a warning: no worker joins these tests.
    EXPECT_THAT(r.out, ::testing::StartsWith("sweep cli-test-"));
    EXPECT_THAT(r.out, HasSubstr("\nfits no known worker: no worker has registered with the "
                                 "coordinator yet"));
    return match.size() > 1 ? match[1].str() : "";
  }

  std::unique_ptr<test::TestCoordinator> coordinator_;
};

}  // namespace ablate::cli_test

#endif  // ABLATE_TESTS_CLI_FIXTURE_H_
