// The real ablate-worker against the real coordinator with credentials the coordinator refuses:
// the daemon says so and exits failing, instead of reconnecting forever; and its help says which
// of its credentials it sends.
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"

namespace ablate {
namespace {

using ::testing::HasSubstr;

TEST(WorkerRefusedTest, AWorkerWhoseTokenTheCoordinatorRefusesExitsSayingWhy) {
  absl::StatusOr<std::string> bin_dir = test::BinDir();
  ASSERT_TRUE(bin_dir.ok()) << bin_dir.status();
  absl::StatusOr<std::string> dir = test::MakeTempDir();
  ASSERT_TRUE(dir.ok()) << dir.status();
  {
    // Only n1 holds a worker token; n2's token is unknown to this coordinator.
    absl::StatusOr<std::unique_ptr<test::TestCoordinator>> coordinator =
        test::TestCoordinator::Start(*bin_dir, *dir, {}, 0, {"n1"});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    // The fake trainer: builds without LibTorch (the sanitizers') have no ablate-train, which
    // the worker checks for before it connects.
    absl::StatusOr<std::unique_ptr<test::Subprocess>> worker =
        test::StartWorker(*bin_dir, (*coordinator)->grpc_address(), "n2",
                          absl::StrCat(*dir, "/work"), 1, {"--trainer", ABLATE_FAKE_TRAINER});
    ASSERT_TRUE(worker.ok()) << worker.status();
    absl::StatusOr<int> exit = (*worker)->WaitFor(absl::Seconds(20));
    ASSERT_TRUE(exit.ok()) << "still running: " << (*worker)->Stderr();
    EXPECT_EQ(*exit, 1);
    EXPECT_THAT((*worker)->Stderr(),
                HasSubstr(absl::StrCat("ablate-worker: the coordinator at ",
                                       (*coordinator)->grpc_address(), " refuses this worker: ")));
    EXPECT_THAT((*worker)->Stderr(), HasSubstr("--worker-id n2"));
    // No signal stopped it, and its log does not say one did.
    EXPECT_THAT((*worker)->Stderr(), HasSubstr("stopping: the coordinator refuses this worker"));
    EXPECT_THAT((*worker)->Stderr(), ::testing::Not(HasSubstr("signal received")));
  }
  std::filesystem::remove_all(*dir);
}

// Which token the worker sends when several are given is said where its flags are.
TEST(WorkerRefusedTest, TheHelpSaysWhichTokenIsSent) {
  absl::StatusOr<std::string> bin_dir = test::BinDir();
  ASSERT_TRUE(bin_dir.ok()) << bin_dir.status();
  absl::StatusOr<std::unique_ptr<test::Subprocess>> help =
      test::Subprocess::Start({*bin_dir + "/ablate-worker", "--help"});
  ASSERT_TRUE(help.ok()) << help.status();
  absl::StatusOr<int> exit = (*help)->WaitFor(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0);
  EXPECT_THAT((*help)->Stdout(),
              HasSubstr("--token-file, else $ABLATE_TOKEN_FILE, else $ABLATE_TOKEN (a token file "
                        "given either way wins over $ABLATE_TOKEN)"));
}

}  // namespace
}  // namespace ablate
