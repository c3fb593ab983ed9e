// A job of two CPU ranks through the whole service: the worker starts both ranks of the gang,
// and when one of them is SIGKILLed the other is stopped at once, the attempt ends naming the
// rank, and the job's next attempt resumes both ranks from the last checkpoint. Then SIGTERM to
// the worker: the ranks checkpoint the step they reached, and another worker finishes the job.
// Real processes, real signals, real trainers on the tiny model.
#include <signal.h>
#include <sys/types.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"

namespace ablate {
namespace {

constexpr int kSteps = 300;

// The child of `parent` whose environment holds `variable` (e.g. "RANK=1"), or 0.
pid_t ChildWithEnvironment(pid_t parent, const std::string& variable) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // pid (comm) state ppid ...: the command may hold spaces, so read after the last ')'.
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::string state;
    pid_t ppid = 0;
    std::istringstream rest(line.substr(close + 1));
    if (!(rest >> state >> ppid) || ppid != parent) continue;
    std::ifstream environ(entry.path() / "environ");
    std::string value;
    while (std::getline(environ, value, '\0')) {
      if (value == variable) return pid;
    }
  }
  return 0;
}

class GangTest : public test::ClusterTest {};

TEST_F(GangTest, AKilledRankEndsTheAttemptAndTheJobResumesBothRanks) {
  absl::Status started = StartFirstWorkerWithOneJob(/*slots=*/2, kSteps, "  cpu_ranks: 2\n");
  ASSERT_TRUE(started.ok()) << started << Logs();

  // Past a checkpoint (every 20 steps): kill rank 1 outright.
  absl::StatusOr<v1::Job> job =
      WaitForOnlyJob([](const v1::Job& j) { return j.step() >= 25; }, absl::Minutes(2));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  const pid_t rank1 = ChildWithEnvironment(workers_.front()->pid(), "RANK=1");
  ASSERT_GT(rank1, 0) << "no rank 1 under the worker\n" << Logs();
  ASSERT_EQ(kill(rank1, SIGKILL), 0);

  // The attempt ends naming the rank; the next one resumes from a checkpoint and finishes.
  job = WaitForOnlyJob([](const v1::Job& j) { return j.state() == v1::JOB_STATE_SUCCEEDED; },
                       absl::Minutes(3));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  EXPECT_EQ(job->attempts(), 2u);
  EXPECT_EQ(job->step(), kSteps);
  EXPECT_TRUE(absl::StrContains(Logs(), "rank 1 of 2 killed by signal 9 (SIGKILL)")) << Logs();
}

// Both ranks save the step they reached (StopTest in trainer_process_test checks that they
// agree on it), and the job resumes from there on the next worker.
TEST_F(GangTest, SigtermedWorkerCheckpointsBothRanksWhereTheyStoppedAndAnotherFinishes) {
  absl::Status started = StartFirstWorkerWithOneJob(/*slots=*/2, kSteps, "  cpu_ranks: 2\n");
  ASSERT_TRUE(started.ok()) << started << Logs();
  DrainFirstWorkerThenFinishOnSecond(/*slots=*/2, kSteps, absl::Seconds(30));
}

}  // namespace
}  // namespace ablate
