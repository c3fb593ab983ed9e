#include "coordinator/store/store.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/store/schema.h"
#include "coordinator/store/sqlite_db.h"
#include "coordinator/testing/fixtures.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using ::testing::ElementsAre;

using testing::FakeClock;

using testing::MakeJobs;
using testing::MakeSweep;

using ::ablate::coordinator::testing::Point;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("ablate.db");
    Reopen();
  }

  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_, clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // A sweep "s" of `n` jobs, then the first job started and running on worker w1.
  uint64_t CreateAndRunFirst(int n) {
    EXPECT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", n), 3).ok());
    absl::StatusOr<v1::Attempt> attempt = store_->StartAttempt("s-j0", "w1");
    EXPECT_TRUE(attempt.ok()) << attempt.status();
    EXPECT_TRUE(store_->MarkRunning("s-j0", attempt->id()).ok());
    return attempt->id();
  }

  // The counts the store keeps as jobs change state agree with counting its jobs.
  void ExpectCountsMatchJobs(const std::string& sweep_id) {
    const std::vector<v1::Job> jobs = store_->ListJobs(sweep_id).value();
    auto count = [&](v1::JobState state) {
      return std::count_if(jobs.begin(), jobs.end(),
                           [&](const v1::Job& job) { return job.state() == state; });
    };
    const v1::JobCounts counts = Sweep(sweep_id).counts();
    EXPECT_EQ(counts.total(), jobs.size());
    EXPECT_EQ(counts.pending(), count(v1::JOB_STATE_PENDING));
    EXPECT_EQ(counts.assigned(), count(v1::JOB_STATE_ASSIGNED));
    EXPECT_EQ(counts.running(), count(v1::JOB_STATE_RUNNING));
    EXPECT_EQ(counts.succeeded(), count(v1::JOB_STATE_SUCCEEDED));
    EXPECT_EQ(counts.failed(), count(v1::JOB_STATE_FAILED));
    EXPECT_EQ(counts.cancelled(), count(v1::JOB_STATE_CANCELLED));
  }

  v1::Job Job(const std::string& id) { return store_->GetJob(id).value(); }
  v1::Sweep Sweep(const std::string& id) { return store_->GetSweep(id).value(); }

  testing::TempDir dir_;
  FakeClock clock_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, CreatesListsAndGets) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("a"), MakeJobs("a", 3), 4).ok());
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("b"), MakeJobs("b", 2), 3).ok());

  v1::Sweep a = Sweep("a");
  EXPECT_EQ(a.spec().name(), "a");
  EXPECT_EQ(a.state(), v1::SWEEP_STATE_ACTIVE);
  EXPECT_EQ(a.counts().total(), 3u);
  EXPECT_EQ(a.counts().pending(), 3u);
  EXPECT_EQ(absl::FromUnixSeconds(a.created_at().seconds()), absl::FromUnixSeconds(1'800'000'000));

  std::vector<v1::Sweep> sweeps = store_->ListSweeps().value();
  ASSERT_EQ(sweeps.size(), 2u);
  EXPECT_EQ(sweeps[0].id(), "b");  // newest first
  EXPECT_EQ(sweeps[1].id(), "a");

  std::vector<v1::Job> jobs = store_->ListJobs("a").value();
  ASSERT_EQ(jobs.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(jobs[i].spec().index(), i);
    EXPECT_EQ(jobs[i].state(), v1::JOB_STATE_PENDING);
    EXPECT_EQ(jobs[i].max_attempts(), 4u);
    EXPECT_EQ(jobs[i].attempts(), 0u);
    EXPECT_EQ(jobs[i].current_attempt_id(), 0u);
    EXPECT_FALSE(jobs[i].has_last_loss());
  }
  EXPECT_EQ(Job("a-j2").spec().config().steps(), 102u);

  EXPECT_EQ(store_->CreateSweep(MakeSweep("a"), MakeJobs("a", 1), 3).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetSweep("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ListJobs("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetJob("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, PendingJobsOldestSweepFirstInExpansionOrder) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("a"), MakeJobs("a", 3), 3).ok());
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("b"), MakeJobs("b", 2), 3).ok());
  ASSERT_TRUE(store_->StartAttempt("a-j1", "w1").ok());

  const std::vector<v1::Job> pending = store_->PendingJobs(10).value();
  std::vector<std::string> ids;
  ids.reserve(pending.size());
  for (const v1::Job& job : pending) ids.push_back(job.spec().job_id());
  EXPECT_THAT(ids, ElementsAre("a-j0", "a-j2", "b-j0", "b-j1"));
  EXPECT_EQ(store_->PendingJobs(2).value().size(), 2u);
}

TEST_F(StoreTest, StartAttemptsSkipsJobsNoLongerPending) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 3), 3).ok());
  ASSERT_TRUE(store_->CancelJobs({"s-j1"}, "stop").ok());
  absl::StatusOr<std::vector<v1::Attempt>> attempts =
      store_->StartAttempts({{"s-j0", "w1"}, {"s-j1", "w1"}, {"s-j2", "w2"}, {"nope", "w2"}});
  ASSERT_TRUE(attempts.ok()) << attempts.status();
  ASSERT_EQ(attempts->size(), 4u);
  EXPECT_NE(attempts->at(0).id(), 0u);
  EXPECT_EQ(attempts->at(1).id(), 0u);
  EXPECT_NE(attempts->at(2).id(), 0u);
  EXPECT_EQ(attempts->at(3).id(), 0u);
  EXPECT_EQ(Job("s-j0").current_attempt_id(), attempts->at(0).id());
  EXPECT_EQ(Job("s-j2").worker_id(), "w2");
  EXPECT_EQ(Job("s-j1").state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(Sweep("s").counts().assigned(), 2u);
  ExpectCountsMatchJobs("s");
}

TEST_F(StoreTest, SetPendingMessagesTouchesOnlyPendingJobs) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 2), 3).ok());
  ASSERT_TRUE(store_->StartAttempt("s-j0", "w1").ok());
  ASSERT_TRUE(store_->SetPendingMessages({"s-j0", "s-j1", "nope"}, "waiting: why").ok());
  EXPECT_EQ(Job("s-j0").message(), "");
  EXPECT_EQ(Job("s-j1").message(), "waiting: why");
}

TEST_F(StoreTest, SetAttemptMessagesTouchesOnlyThatAttemptsActiveJob) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 2), 3).ok());
  const uint64_t attempt = store_->StartAttempt("s-j0", "w1").value().id();
  ASSERT_TRUE(store_
                  ->SetAttemptMessages({{"s-j0", attempt + 1}, {"s-j1", 0}, {"nope", attempt}},
                                       "worker w1 disconnected")
                  .ok());
  EXPECT_EQ(Job("s-j0").message(), "");  // another attempt's
  EXPECT_EQ(Job("s-j1").message(), "");  // pending
  ASSERT_TRUE(store_->SetAttemptMessages({{"s-j0", attempt}}, "worker w1 disconnected").ok());
  EXPECT_EQ(Job("s-j0").message(), "worker w1 disconnected");
}

TEST_F(StoreTest, AttemptLifecycleUpdatesJobAndCounts) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 2), 3).ok());
  absl::StatusOr<v1::Attempt> attempt = store_->StartAttempt("s-j0", "w1");
  ASSERT_TRUE(attempt.ok()) << attempt.status();
  EXPECT_EQ(attempt->state(), v1::ATTEMPT_STATE_ASSIGNED);
  v1::Job job = Job("s-j0");
  EXPECT_EQ(job.state(), v1::JOB_STATE_ASSIGNED);
  EXPECT_EQ(job.attempts(), 1u);
  EXPECT_EQ(job.current_attempt_id(), attempt->id());
  EXPECT_EQ(job.worker_id(), "w1");
  EXPECT_EQ(Sweep("s").counts().assigned(), 1u);
  EXPECT_EQ(store_->StartAttempt("s-j0", "w2").status().code(),
            absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(store_->MarkRunning("s-j0", attempt->id()).ok());
  EXPECT_EQ(Job("s-j0").state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(Sweep("s").counts().running(), 1u);

  ASSERT_TRUE(store_
                  ->AppendMetrics("s-j0", attempt->id(),
                                  {Point("train/loss", 10, 4.0), Point("train/lr", 20, 1e-3),
                                   Point("train/loss", 20, 3.5)})
                  .ok());
  job = Job("s-j0");
  EXPECT_EQ(job.step(), 20);
  EXPECT_DOUBLE_EQ(job.last_loss(), 3.5);
  EXPECT_FALSE(job.has_last_eval_loss());
  // An evaluation during the run is the job's newest eval/loss; a report without one keeps it.
  ASSERT_TRUE(store_
                  ->AppendMetrics("s-j0", attempt->id(),
                                  {Point("eval/loss", 20, 3.75), Point("eval/loss", 10, 3.9)})
                  .ok());
  ASSERT_TRUE(store_->AppendMetrics("s-j0", attempt->id(), {Point("train/loss", 30, 3.4)}).ok());
  EXPECT_DOUBLE_EQ(Job("s-j0").last_eval_loss(), 3.75);

  v1::ExitStatus exit;
  exit.set_reason("done");
  clock_.Advance(absl::Minutes(5));
  ASSERT_TRUE(store_
                  ->EndAttempt("s-j0", attempt->id(), v1::ATTEMPT_STATE_SUCCEEDED, exit,
                               v1::JOB_STATE_SUCCEEDED, "", 3.25)
                  .ok());
  job = Job("s-j0");
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_DOUBLE_EQ(job.final_eval_loss(), 3.25);
  std::vector<v1::Attempt> attempts = store_->ListAttempts("s-j0").value();
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].state(), v1::ATTEMPT_STATE_SUCCEEDED);
  EXPECT_EQ(attempts[0].exit().reason(), "done");
  EXPECT_EQ(attempts[0].ended_at().seconds() - attempts[0].started_at().seconds(), 300);

  v1::Sweep sweep = Sweep("s");
  EXPECT_EQ(sweep.counts().succeeded(), 1u);
  EXPECT_EQ(sweep.counts().pending(), 1u);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_ACTIVE);
  EXPECT_FALSE(sweep.has_ended_at());  // no end while a job is still to run

  absl::StatusOr<v1::Attempt> second = store_->StartAttempt("s-j1", "w1");
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(store_
                  ->EndAttempt("s-j1", second->id(), v1::ATTEMPT_STATE_FAILED, exit,
                               v1::JOB_STATE_FAILED, "out of memory", std::nullopt)
                  .ok());
  EXPECT_EQ(Job("s-j1").message(), "out of memory");
  EXPECT_EQ(Sweep("s").state(), v1::SWEEP_STATE_FAILED);
  ExpectCountsMatchJobs("s");
  // Ended: when its last job changed, in GetSweep and ListSweeps alike.
  const int64_t last = Job("s-j1").updated_at().seconds();
  EXPECT_EQ(last - Sweep("s").created_at().seconds(), 300);
  EXPECT_EQ(Sweep("s").ended_at().seconds(), last);
  EXPECT_EQ(store_->ListSweeps().value().at(0).ended_at().seconds(), last);
}

TEST_F(StoreTest, StaleAttemptReportsAreRefusedSaveALostAttemptsPoints) {
  const uint64_t first = CreateAndRunFirst(2);
  // The worker is lost; the job goes back to the queue and starts again elsewhere.
  ASSERT_TRUE(store_
                  ->EndAttempt("s-j0", first, v1::ATTEMPT_STATE_LOST, {}, v1::JOB_STATE_PENDING,
                               "worker lost", std::nullopt)
                  .ok());
  absl::StatusOr<v1::Attempt> second = store_->StartAttempt("s-j0", "w2");
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->id(), first);
  EXPECT_EQ(Job("s-j0").attempts(), 2u);

  const int64_t version = store_->Version();
  EXPECT_EQ(store_->MarkRunning("s-j0", first).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_
                ->EndAttempt("s-j0", first, v1::ATTEMPT_STATE_SUCCEEDED, {},
                             v1::JOB_STATE_SUCCEEDED, "", 1.0)
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Version(), version);  // nothing changed
  v1::Job job = Job("s-j0");
  EXPECT_EQ(job.state(), v1::JOB_STATE_ASSIGNED);
  EXPECT_EQ(job.step(), 0);
  EXPECT_TRUE(store_->ReadMetrics("s-j0", {}, 100).value().empty());

  // The lost attempt's points are kept, since the second attempt may resume from a checkpoint
  // the first wrote after the coordinator lost sight of it; the job's step moves only forward.
  ASSERT_TRUE(store_->AppendMetrics("s-j0", first, {Point("train/loss", 50, 1.0)}).ok());
  ASSERT_TRUE(store_->AppendMetrics("s-j0", first, {Point("train/loss", 40, 2.0)}).ok());
  EXPECT_EQ(Job("s-j0").step(), 50);
  EXPECT_EQ(Job("s-j0").state(), v1::JOB_STATE_ASSIGNED);
  ASSERT_EQ(store_->ReadMetrics("s-j0", {}, 100).value().size(), 1u);
  EXPECT_EQ(store_->ReadMetrics("s-j0", {}, 100).value()[0].steps_size(), 2);
  // Another job's attempt is not this job's.
  EXPECT_EQ(store_->AppendMetrics("s-j1", first, {Point("train/loss", 60, 1.0)}).code(),
            absl::StatusCode::kFailedPrecondition);

  // Reports after the job ended are refused too, even from its last attempt.
  ASSERT_TRUE(store_
                  ->EndAttempt("s-j0", second->id(), v1::ATTEMPT_STATE_SUCCEEDED, {},
                               v1::JOB_STATE_SUCCEEDED, "", std::nullopt)
                  .ok());
  EXPECT_EQ(store_->AppendMetrics("s-j0", second->id(), {Point("train/loss", 1, 1.0)}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->MarkRunning("nope", 1).code(), absl::StatusCode::kNotFound);
  ExpectCountsMatchJobs("s");
}

TEST_F(StoreTest, CancelsPendingAndRunningJobs) {
  const uint64_t running = CreateAndRunFirst(3);
  absl::StatusOr<v1::Attempt> done = store_->StartAttempt("s-j2", "w1");
  ASSERT_TRUE(done.ok());
  ASSERT_TRUE(store_
                  ->EndAttempt("s-j2", done->id(), v1::ATTEMPT_STATE_SUCCEEDED, {},
                               v1::JOB_STATE_SUCCEEDED, "", std::nullopt)
                  .ok());

  EXPECT_EQ(store_->CancelJobs({"s-j0", "nope"}, "by user").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Job("s-j0").state(), v1::JOB_STATE_RUNNING);  // the failed call changed nothing

  absl::StatusOr<std::vector<v1::Job>> cancelled =
      store_->CancelJobs({"s-j0", "s-j1", "s-j2"}, "by user");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  ASSERT_EQ(cancelled->size(), 2u);                           // the ended job is skipped
  EXPECT_EQ((*cancelled)[0].state(), v1::JOB_STATE_RUNNING);  // as it was before
  EXPECT_EQ((*cancelled)[0].current_attempt_id(), running);
  EXPECT_EQ((*cancelled)[0].worker_id(), "w1");
  EXPECT_EQ((*cancelled)[1].state(), v1::JOB_STATE_PENDING);

  EXPECT_EQ(Job("s-j0").state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(Job("s-j1").message(), "by user");
  EXPECT_EQ(store_->ListAttempts("s-j0").value()[0].state(), v1::ATTEMPT_STATE_CANCELLED);
  v1::Sweep sweep = Sweep("s");
  EXPECT_EQ(sweep.counts().cancelled(), 2u);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_CANCELLED);
  ExpectCountsMatchJobs("s");
  EXPECT_EQ(store_->MarkRunning("s-j0", running).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(StoreTest, ReadMetricsThinsAndKeepsTheLastPoint) {
  const uint64_t attempt = CreateAndRunFirst(1);
  std::vector<v1::MetricPoint> points;
  points.reserve(1001);
  for (int step = 0; step < 1000; ++step) points.push_back(Point("train/loss", step, step));
  points.push_back(Point("eval/loss", 999, 2.0));
  ASSERT_TRUE(store_->AppendMetrics("s-j0", attempt, points).ok());

  std::vector<v1::MetricSeries> series = store_->ReadMetrics("s-j0", {"train/loss"}, 10).value();
  ASSERT_EQ(series.size(), 1u);
  ASSERT_EQ(series[0].steps_size(), 10);
  EXPECT_EQ(series[0].steps(0), 0);
  EXPECT_EQ(series[0].steps(9), 999);
  EXPECT_DOUBLE_EQ(series[0].values(9), 999);

  series = store_->ReadMetrics("s-j0", {}, 2000).value();
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(series[0].name(), "eval/loss");
  EXPECT_EQ(series[1].steps_size(), 1000);
  EXPECT_EQ(store_->ReadMetrics("nope", {}, 10).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, ReopeningKeepsEverything) {
  const uint64_t attempt = CreateAndRunFirst(2);
  ASSERT_TRUE(store_->AppendMetrics("s-j0", attempt, {Point("train/loss", 5, 2.5)}).ok());
  v1::WorkerInfo info;
  info.set_worker_id("w1");
  info.add_slots()->set_kind(v1::DEVICE_KIND_CPU);
  ASSERT_TRUE(store_->UpsertWorker(info, true).ok());
  const v1::Job before = Job("s-j0");

  Reopen();
  EXPECT_EQ(Job("s-j0").SerializeAsString(), before.SerializeAsString());
  EXPECT_EQ(Sweep("s").counts().running(), 1u);
  EXPECT_EQ(store_->ListAttempts("s-j0").value().size(), 1u);
  EXPECT_EQ(store_->ReadMetrics("s-j0", {}, 10).value()[0].values(0), 2.5);
  EXPECT_EQ(store_->ListWorkers().value().size(), 1u);
  // The fence holds across a restart: the attempt is still the live one.
  EXPECT_TRUE(store_->AppendMetrics("s-j0", attempt, {Point("train/loss", 6, 2.4)}).ok());
}

TEST_F(StoreTest, RecordsTheSchemaVersionAndRefusesANewerOne) {
  store_.reset();
  {
    auto db = internal::Db::Open(path_, false).value();
    EXPECT_EQ(internal::SchemaVersion(*db).value(), internal::CurrentSchemaVersion());
  }
  {
    auto db = internal::Db::Open(path_, false).value();
    ASSERT_TRUE(db->Exec("PRAGMA user_version = 99").ok());
  }
  absl::StatusOr<std::unique_ptr<Store>> newer = Store::Open(path_, clock_);
  EXPECT_EQ(newer.status().code(), absl::StatusCode::kFailedPrecondition);
}

// A database file this process may not write is refused when opened, naming the file, rather
// than served until the first write fails. Root writes any file, so as root the open runs in a
// child that has become nobody.
TEST_F(StoreTest, AFileItMayNotWriteIsRefusedAtOpen) {
  store_.reset();
  ASSERT_EQ(chmod(path_.c_str(), 0444), 0);
  ASSERT_EQ(chmod(std::filesystem::path(path_).parent_path().c_str(), 0755), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(2);
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_, clock_);
    const bool refused =
        store.status().code() == absl::StatusCode::kPermissionDenied &&
        absl::StrContains(store.status().message(), path_ + ": the database file is read-only");
    _exit(refused ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: not refused as read-only; 2: cannot become nobody";
  ASSERT_EQ(chmod(path_.c_str(), 0644), 0);
  EXPECT_TRUE(Store::Open(path_, clock_).ok());  // writable again
}

TEST_F(StoreTest, WaitForChangeWakesOnAWriteFromAnotherThread) {
  const int64_t seen = store_->Version();
  EXPECT_EQ(store_->WaitForChange(seen, absl::Milliseconds(10)), seen);  // times out
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    EXPECT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 1), 3).ok());
  });
  const absl::Time start = absl::Now();
  EXPECT_GT(store_->WaitForChange(seen, absl::Seconds(30)), seen);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  writer.join();
}

TEST_F(StoreTest, WorkersShowTheirJobsAndFreeSlots) {
  v1::WorkerInfo info;
  info.set_worker_id("w1");
  info.set_hostname("node-1");
  for (int i = 0; i < 4; ++i) info.add_slots()->set_index(i);
  ASSERT_TRUE(store_->UpsertWorker(info, true).ok());
  std::vector<v1::JobSpec> jobs = MakeJobs("s", 2);
  jobs[0].mutable_config()->set_gpus(2);  // holds two slots; jobs[1] holds one
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), jobs, 3).ok());
  ASSERT_TRUE(store_->StartAttempt("s-j0", "w1").ok());
  ASSERT_TRUE(store_->StartAttempt("s-j1", "w1").ok());

  std::vector<v1::Worker> workers = store_->ListWorkers().value();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_TRUE(workers[0].connected());
  EXPECT_EQ(workers[0].info().hostname(), "node-1");
  EXPECT_THAT(workers[0].job_ids(), ElementsAre("s-j0", "s-j1"));
  EXPECT_EQ(workers[0].free_slots(), 1u);

  clock_.Advance(absl::Seconds(30));
  v1::WorkerInfo bye;
  bye.set_worker_id("w1");
  ASSERT_TRUE(store_->UpsertWorker(bye, false).ok());
  workers = store_->ListWorkers().value();
  EXPECT_FALSE(workers[0].connected());
  EXPECT_EQ(workers[0].info().hostname(), "node-1");  // the last report is kept
  EXPECT_EQ(workers[0].last_seen().seconds() - workers[0].connected_at().seconds(), 30);
}

TEST_F(StoreTest, CopiesTheLogBackOnlyOnceItHoldsCheckpointPages) {
  v1::WorkerInfo worker;
  worker.set_worker_id("w1");
  EXPECT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 50), 3).ok());
  EXPECT_TRUE(store_->UpsertWorker(worker, true).ok());
  EXPECT_EQ(store_->Stats().checkpoints, 0);  // a few pages, under the default 10,000

  store_.reset();
  StoreOptions options;
  options.checkpoint_pages = 1;
  store_ = Store::Open(path_, clock_, options).value();
  const auto size_before = std::filesystem::file_size(path_);
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("t"), MakeJobs("t", 2000), 3).ok());
  // The checkpoint follows the answer to the sweep's write; the next write waits for it.
  ASSERT_TRUE(store_->UpsertWorker(worker, true).ok());
  EXPECT_GE(store_->Stats().checkpoints, 1);
  EXPECT_GT(std::filesystem::file_size(path_), size_before);  // the sweep's pages copied in
  EXPECT_EQ(store_->ListJobs("t").value().size(), 2000u);
}

TEST(InMemoryStoreTest, ReadsSeeWrites) {
  FakeClock clock;
  std::unique_ptr<Store> store = Store::Open(":memory:", clock).value();
  ASSERT_TRUE(store->CreateSweep(MakeSweep("m"), MakeJobs("m", 2), 3).ok());
  EXPECT_EQ(store->ListJobs("m").value().size(), 2u);
}

}  // namespace
}  // namespace ablate::coordinator
