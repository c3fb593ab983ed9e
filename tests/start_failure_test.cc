// A worker that cannot start its trainer, through the real coordinator (its SQLite file, gRPC on
// loopback), worker and CLI processes, with the fake trainer (worker/testdata/fake_trainer.cc)
// in ablate-train's place: a copy of it that loses its execute bits after the worker started.
// The failure this fixes: such a worker reported each assignment interrupted and was handed
// the job again at once, 9,649 attempts in 35 s, each with its folder, while `ablate workers`
// showed it connected with a free slot. Now the coordinator backs off from it (1 s, 2 s, ...),
// `ablate workers` says why, its job waits or goes to a healthy worker, and once the trainer
// can run again the job finishes there, its max_attempts of 1 untouched. Seconds.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"

namespace ablate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kExec = std::filesystem::perms::owner_exec | std::filesystem::perms::group_exec |
                       std::filesystem::perms::others_exec;

class StartFailureTest : public test::ClusterTest {
 protected:
  // A copy of the fake trainer, executable, for a worker's --trainer.
  std::string CopyTrainer() {
    const std::filesystem::path trainer = std::filesystem::path(dir_) / "bin" / "ablate-train";
    std::filesystem::create_directories(trainer.parent_path());
    std::filesystem::copy_file(ABLATE_FAKE_TRAINER, trainer);
    return trainer.string();
  }

  // A sweep of `jobs` jobs of 3 steps each, none retried: a failure counted against
  // max_attempts would fail its job.
  std::string WriteSweep(int jobs) {
    std::string path = dir_ + "/start.yaml";
    std::ofstream out(path);
    out << "name: start\ngrid:\n  model: [tiny]\n  seed: [";
    for (int seed = 1; seed <= jobs; ++seed) out << (seed > 1 ? ", " : "") << seed;
    out << "]\nfixed:\n  steps: 3\n  batch_size: 4\n  context_length: 32\n  warmup_steps: 1\n"
        << "  checkpoint_every: 0\n  cpu_threads: 1\nmax_attempts: 1\n"
        << "checkpoint_root: " << dir_ << "/checkpoints\n";
    return path;
  }

  // `ablate workers` once it shows `text` (polled for up to 10 s); the last output otherwise.
  std::string WorkersShowing(const std::string& text) {
    std::string out;
    for (const absl::Time deadline = absl::Now() + absl::Seconds(10); absl::Now() < deadline;
         absl::SleepFor(absl::Milliseconds(100))) {
      out = Ablate({"workers"}).out;
      if (absl::StrContains(out, text)) break;
    }
    return out;
  }

  // The attempt folders worker `id` holds for `job_id`.
  int AttemptFolders(const std::string& id, const std::string& job_id) {
    int count = 0;
    std::error_code error;
    for (const auto& entry :
         std::filesystem::directory_iterator(absl::StrCat(dir_, "/", id, "/", job_id), error)) {
      if (entry.is_directory()) ++count;
    }
    return count;
  }
};

TEST_F(StartFailureTest, AWorkerThatCannotRunItsTrainerBacksOffAndTheJobRunsOnceItCan) {
  const std::string trainer = CopyTrainer();
  ASSERT_NO_FATAL_FAILURE(StartCoordinatorAndWorker("w", 1, {"--trainer", trainer}));
  // The worker checks its trainer as it starts; the trainer breaks afterwards.
  ASSERT_TRUE(Connected(1)) << Logs();
  std::filesystem::permissions(trainer, kExec, std::filesystem::perm_options::remove);
  ASSERT_TRUE(Submit(WriteSweep(1)).ok()) << Logs();

  absl::StatusOr<v1::Job> job = WaitForOnlyJob(
      [](const v1::Job& j) { return j.attempts() >= 1 && j.state() == v1::JOB_STATE_PENDING; },
      absl::Seconds(20));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  const std::string reason = absl::StrCat("cannot run ", trainer, ": Permission denied");
  EXPECT_THAT(job->message(), HasSubstr(reason));
  EXPECT_THAT(job->message(), HasSubstr("not counted against max_attempts"));
  const std::string workers = WorkersShowing("backing off");
  EXPECT_THAT(workers, HasSubstr("backing off")) << Logs();
  EXPECT_THAT(workers, HasSubstr(absl::StrCat("w: not taking work: ", reason))) << Logs();

  // Rests of 1 s, then 2 s: two or three tries in 2.5 s where there were hundreds.
  absl::SleepFor(absl::Milliseconds(2500));
  job = WaitForOnlyJob([](const v1::Job&) { return true; }, absl::Seconds(5));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_LE(job->attempts(), 3u) << Logs();
  EXPECT_EQ(job->state(), v1::JOB_STATE_PENDING);
  // No folder is left for an attempt whose trainer never ran.
  EXPECT_EQ(AttemptFolders("w", job->spec().job_id()), 0);

  // Runnable again: the next try starts the trainer, and the job succeeds, though it allows
  // one attempt only.
  std::filesystem::permissions(trainer, kExec, std::filesystem::perm_options::add);
  job = WaitForOnlyJob([](const v1::Job& j) { return j.state() == v1::JOB_STATE_SUCCEEDED; },
                       absl::Seconds(30));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  EXPECT_LE(job->attempts(), 5u);
  // Every failed start is stored apart from the budget, which stays the file's.
  EXPECT_EQ(job->uncounted_attempts(), job->attempts() - 1);
  EXPECT_EQ(job->max_attempts(), 1u);
  EXPECT_EQ(AttemptFolders("w", job->spec().job_id()), 1);
  const std::string healthy = Ablate({"workers"}).out;
  EXPECT_THAT(healthy, HasSubstr("connected"));
  EXPECT_THAT(healthy, Not(HasSubstr("not taking work")));
}

TEST_F(StartFailureTest, JobsABrokenWorkerCannotStartRunOnAHealthyOne) {
  const std::string trainer = CopyTrainer();
  auto coordinator = test::TestCoordinator::Start(bin_dir_, dir_, {}, 0, {"broken", "healthy"});
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  coordinator_ = *std::move(coordinator);
  // "broken" comes first in the scheduler's order, so the jobs are offered to it first.
  for (const std::string id : {"broken", "healthy"}) {
    auto worker =
        StartNamedWorker(id, 2, {"--trainer", id == "broken" ? trainer : ABLATE_FAKE_TRAINER});
    ASSERT_TRUE(worker.ok()) << worker.status();
    workers_.push_back(*std::move(worker));
  }
  ASSERT_TRUE(Connected(2)) << Logs();
  std::filesystem::permissions(trainer, kExec, std::filesystem::perm_options::remove);
  ASSERT_TRUE(Submit(WriteSweep(3)).ok()) << Logs();

  std::vector<v1::Job> jobs;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(100))) {
    absl::StatusOr<std::vector<v1::Job>> now = OnlySweepJobs();
    ASSERT_TRUE(now.ok()) << now.status();
    jobs = *std::move(now);
    if (std::all_of(jobs.begin(), jobs.end(),
                    [](const v1::Job& j) { return j.state() == v1::JOB_STATE_SUCCEEDED; })) {
      break;
    }
  }
  ASSERT_EQ(jobs.size(), 3u);
  for (const v1::Job& job : jobs) {
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.message() << Logs();
    EXPECT_EQ(job.worker_id(), "healthy");
    EXPECT_LE(job.attempts(), 3u);
  }
  EXPECT_THAT(Ablate({"workers"}).out, HasSubstr("broken: not taking work: cannot run ")) << Logs();
}

}  // namespace
}  // namespace ablate
