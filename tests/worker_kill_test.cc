// The real ablate-worker, killed with SIGKILL while a trainer runs, then started again on the
// same work dir: the trainer dies with the worker (its death signal), and what the trainer had
// started in its process group, which no death signal reaches, is stopped by the restarted
// worker before it takes any work.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "worker/testing/fake_coordinator.h"
#include "worker/testing/process_state.h"

namespace ablate {
namespace {

using worker::testing::Assign;
using worker::testing::IsHello;
using worker::testing::IsStarted;
using worker::testing::TestServer;

constexpr absl::Duration kWait = absl::Seconds(15);

using worker::testing::Dead;
using worker::testing::EventuallyDead;

// The pid the fake trainer's "sleep" behaviour reports for the helper it started.
std::optional<pid_t> GrandchildPid(TestServer& server, uint64_t attempt_id) {
  std::optional<v1::WorkerMessage> log =
      server.coordinator().WaitFor([=](const v1::WorkerMessage& m) {
        return m.has_job_event() && m.job_event().attempt_id() == attempt_id &&
               absl::StartsWith(m.job_event().event().log().text(), "grandchild_pid=");
      });
  pid_t pid = 0;
  if (!log.has_value() || !absl::SimpleAtoi(absl::string_view(log->job_event().event().log().text())
                                                .substr(sizeof("grandchild_pid=") - 1),
                                            &pid)) {
    return std::nullopt;
  }
  return pid;
}

class WorkerKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bin_dir = test::BinDir();
    ASSERT_TRUE(bin_dir.ok()) << bin_dir.status();
    bin_dir_ = *bin_dir;
    auto dir = test::MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
  }
  void TearDown() override {
    for (pid_t pid : leftovers_) kill(pid, SIGKILL);
    std::filesystem::remove_all(dir_);
  }

  // The worker's work dir, inside the test's temporary directory.
  std::filesystem::path WorkDir() const { return std::filesystem::path(dir_) / "work"; }

  absl::StatusOr<std::unique_ptr<test::Subprocess>> StartWorker(int port) {
    return test::StartWorker(bin_dir_, absl::StrCat("127.0.0.1:", port), "killed",
                             WorkDir().string(), 1, {"--trainer", ABLATE_FAKE_TRAINER});
  }

  std::string bin_dir_;
  std::string dir_;
  std::vector<pid_t> leftovers_;  // killed by TearDown should the test fail
};

TEST_F(WorkerKillTest, TrainersDieWithTheWorkerAndARestartStopsWhatTheyLeft) {
  TestServer server(0);
  auto worker = StartWorker(server.port());
  ASSERT_TRUE(worker.ok()) << worker.status();
  ASSERT_TRUE(server.coordinator().WaitFor(IsHello()));
  ASSERT_TRUE(server.coordinator().Send(Assign(1, "sleep", {0})));
  ASSERT_TRUE(server.coordinator().WaitFor(IsStarted(1))) << (*worker)->Stderr();
  const std::optional<pid_t> grandchild = GrandchildPid(server, 1);
  ASSERT_TRUE(grandchild.has_value());
  leftovers_.push_back(*grandchild);
  const std::filesystem::path pid_file = WorkDir() / "trainer-pids" / "attempt-1.pid";
  std::ifstream file(pid_file);
  pid_t trainer = 0;
  ASSERT_TRUE(file >> trainer) << "no pid file " << pid_file;
  leftovers_.push_back(trainer);
  ASSERT_FALSE(Dead(trainer));

  ASSERT_EQ(kill((*worker)->pid(), SIGKILL), 0);
  EXPECT_EQ(*(*worker)->WaitFor(kWait), 128 + SIGKILL);
  EXPECT_TRUE(EventuallyDead(trainer, kWait)) << "the trainer outlived its worker";
  // Its helper is in the trainer's group but not its child: only the next worker can stop it.
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_FALSE(Dead(*grandchild));
  ASSERT_TRUE(std::filesystem::exists(pid_file));

  TestServer restarted(0);
  auto next = StartWorker(restarted.port());
  ASSERT_TRUE(next.ok()) << next.status();
  std::optional<v1::WorkerMessage> hello = restarted.coordinator().WaitFor(IsHello());
  ASSERT_TRUE(hello.has_value()) << (*next)->Stderr();
  // Stopped before the worker said hello, so before it could take any work.
  EXPECT_TRUE(Dead(*grandchild));
  EXPECT_FALSE(std::filesystem::exists(pid_file));
  EXPECT_EQ(hello->hello().running_size(), 0);
  EXPECT_TRUE(absl::StrContains((*next)->Stderr(), "left by an earlier worker"));
  (*next)->Signal(SIGTERM);
  EXPECT_EQ(*(*next)->WaitFor(kWait), 0);
}

}  // namespace
}  // namespace ablate
