// The write path the worker service uses: numbered reports through the group writer, each
// fenced on its own, resends answered OK and stored once, and values SQLite would lose.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "coordinator/store/store.h"
#include "coordinator/testing/fixtures.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using testing::MakeJobs;
using testing::MakeSweep;
using testing::Point;

// Collects the outcome of an *Async write; waits for it.
class Outcome {
 public:
  WriteDone Done() {
    return [this](absl::Status status) {
      status_ = std::move(status);
      done_.Notify();
    };
  }
  absl::Status Wait() {
    done_.WaitForNotification();
    return status_;
  }

 private:
  absl::Notification done_;
  absl::Status status_;
};

class StoreReportsTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen(StoreOptions options = {}) {
    store_.reset();
    absl::StatusOr<std::unique_ptr<Store>> store =
        Store::Open(dir_.File("ablate.db"), clock_, options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // Sweep "s" of `n` jobs, each started on worker w1 and running; returns their attempt ids.
  std::vector<uint64_t> RunAll(int n) {
    EXPECT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", n), 3).ok());
    std::vector<uint64_t> attempts;
    for (int i = 0; i < n; ++i) {
      const std::string job = "s-j" + std::to_string(i);
      attempts.push_back(store_->StartAttempt(job, "w1").value().id());
      EXPECT_TRUE(store_->MarkRunning(job, attempts.back()).ok());
    }
    return attempts;
  }

  size_t PointCount(const std::string& job_id, const std::string& name) {
    std::vector<v1::MetricSeries> series = store_->ReadMetrics(job_id, {name}, 0).value();
    return series.empty() ? 0 : static_cast<size_t>(series[0].steps_size());
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreReportsTest, NonFiniteValuesAreStoredAndReadBack) {
  const uint64_t attempt = RunAll(1)[0];
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  // Today's trainer report: a NaN loss beside a learning rate and a throughput.
  ASSERT_TRUE(
      store_
          ->AppendMetrics("s-j0", attempt,
                          {Point("train/loss", 1, nan), Point("train/lr", 1, 3e-4),
                           Point("train/grad_norm", 1, inf), Point("train/tokens_per_s", 1, -inf)})
          .ok());
  auto value = [&](const std::string& name) {
    std::vector<v1::MetricSeries> series = store_->ReadMetrics("s-j0", {name}, 0).value();
    EXPECT_EQ(series.size(), 1u) << name;
    return series.empty() ? 0.0 : series[0].values(0);
  };
  EXPECT_TRUE(std::isnan(value("train/loss")));
  EXPECT_EQ(value("train/lr"), 3e-4);
  EXPECT_EQ(value("train/grad_norm"), inf);
  EXPECT_EQ(value("train/tokens_per_s"), -inf);
  v1::Job job = store_->GetJob("s-j0").value();
  ASSERT_TRUE(job.has_last_loss());
  EXPECT_TRUE(std::isnan(job.last_loss()));
}

TEST_F(StoreReportsTest, AResentReportIsAnsweredOkAndStoredOnce) {
  const uint64_t attempt = RunAll(1)[0];
  EXPECT_EQ(store_->CommittedSequence(attempt).value(), 0u);
  for (int copy = 0; copy < 3; ++copy) {  // the first send, and two resends after reconnects
    for (uint64_t sequence = 1; sequence <= 4; ++sequence) {
      Outcome outcome;
      store_->AppendMetricsAsync({"s-j0", attempt, sequence},
                                 {Point("train/loss", static_cast<int64_t>(sequence), 2.0)},
                                 outcome.Done());
      EXPECT_TRUE(outcome.Wait().ok());
    }
  }
  EXPECT_EQ(PointCount("s-j0", "train/loss"), 4u);
  EXPECT_EQ(store_->CommittedSequence(attempt).value(), 4u);
  EXPECT_EQ(store_->CommittedSequence(attempt + 100).status().code(), absl::StatusCode::kNotFound);
  // The committed sequence survives a restart, for Welcome.acks.
  Reopen();
  EXPECT_EQ(store_->CommittedSequence(attempt).value(), 4u);
}

TEST_F(StoreReportsTest, AResentEndIsOkThoughTheAttemptEnded) {
  const uint64_t attempt = RunAll(1)[0];
  AttemptEnd end;
  end.attempt_state = v1::ATTEMPT_STATE_SUCCEEDED;
  end.job_state = v1::JOB_STATE_SUCCEEDED;
  end.final_eval_loss = 1.25;
  for (int copy = 0; copy < 2; ++copy) {
    Outcome outcome;
    store_->EndAttemptAsync({"s-j0", attempt, 7}, end, outcome.Done());
    EXPECT_TRUE(outcome.Wait().ok()) << "copy " << copy;
  }
  EXPECT_EQ(store_->GetJob("s-j0").value().final_eval_loss(), 1.25);
  // A report numbered after the end is fenced as before.
  Outcome late;
  store_->AppendMetricsAsync({"s-j0", attempt, 8}, {Point("train/loss", 9, 1.0)}, late.Done());
  EXPECT_EQ(late.Wait().code(), absl::StatusCode::kFailedPrecondition);
}

// An attempt its worker interrupted is counted apart, the budget untouched; one refused before
// its trainer started says so. Both are kept across a restart.
TEST_F(StoreReportsTest, AnUncountedAttemptIsStoredApartFromTheBudget) {
  const uint64_t attempt = RunAll(1)[0];
  AttemptEnd end;
  end.attempt_state = v1::ATTEMPT_STATE_LOST;
  end.job_state = v1::JOB_STATE_PENDING;
  end.exit.set_reason("not started: no free slot");
  end.message = "no free slot";
  end.uncounted = true;
  end.never_started = true;
  Outcome outcome;
  store_->EndAttemptAsync({"s-j0", attempt, 1}, end, outcome.Done());
  ASSERT_TRUE(outcome.Wait().ok());
  const uint64_t second = store_->StartAttempt("s-j0", "w1").value().id();
  end.exit.set_reason("worker shutting down");
  end.never_started = false;
  Outcome again;
  store_->EndAttemptAsync({"s-j0", second, 1}, end, again.Done());
  ASSERT_TRUE(again.Wait().ok());
  Reopen();
  const v1::Job job = store_->GetJob("s-j0").value();
  EXPECT_EQ(job.state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(job.attempts(), 2u);
  EXPECT_EQ(job.uncounted_attempts(), 2u);
  EXPECT_EQ(job.max_attempts(), 3u);
  const std::vector<v1::Attempt> attempts = store_->ListAttempts("s-j0").value();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_TRUE(attempts[0].never_started());
  EXPECT_FALSE(attempts[1].never_started());
}

TEST_F(StoreReportsTest, ARefusedReportLeavesTheOthersOfItsGroupCommitted) {
  const std::vector<uint64_t> attempts = RunAll(3);
  // Hold the writer in the first write's WriteDone so that the next ones queue up and commit
  // as one group.
  absl::Notification release;
  Outcome first;
  store_->AppendMetricsAsync({"s-j0", attempts[0], 1}, {Point("train/loss", 1, 1.0)},
                             [&](absl::Status status) {
                               release.WaitForNotification();
                               first.Done()(std::move(status));
                             });
  Outcome good_before, stale, unknown, good_after;
  store_->AppendMetricsAsync({"s-j1", attempts[1], 1}, {Point("train/loss", 1, 1.0)},
                             good_before.Done());
  store_->AppendMetricsAsync({"s-j2", attempts[2] + 1000, 1}, {Point("train/loss", 1, 1.0)},
                             stale.Done());
  store_->AppendMetricsAsync({"nope", 1, 1}, {Point("train/loss", 1, 1.0)}, unknown.Done());
  store_->AppendMetricsAsync({"s-j2", attempts[2], 1}, {Point("train/loss", 1, 1.0)},
                             good_after.Done());
  release.Notify();
  EXPECT_TRUE(first.Wait().ok());
  EXPECT_TRUE(good_before.Wait().ok());
  EXPECT_EQ(stale.Wait().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(unknown.Wait().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(good_after.Wait().ok());
  EXPECT_EQ(PointCount("s-j1", "train/loss"), 1u);
  EXPECT_EQ(PointCount("s-j2", "train/loss"), 1u);
  EXPECT_EQ(store_->GetJob("s-j2").value().step(), 1);
}

TEST_F(StoreReportsTest, ASynchronousWriteFromAWriteDoneIsRefusedNotDeadlocked) {
  RunAll(1);
  Outcome outer;
  absl::Status inner;
  v1::WorkerInfo info;
  info.set_worker_id("w9");
  store_->UpsertWorkerAsync(info, true, [&](absl::Status status) {
    inner = store_->UpsertWorker(info, false);
    outer.Done()(std::move(status));
  });
  EXPECT_TRUE(outer.Wait().ok());
  EXPECT_EQ(inner.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(StoreReportsTest, MarkRunningKeepsTheTrainersProvenanceUntilTheNextAttempt) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 1), 3).ok());
  const uint64_t first = store_->StartAttempt("s-j0", "w1").value().id();
  v1::Provenance provenance;
  provenance.set_code_version("0.1.0+0123abcd");
  Outcome running;
  store_->MarkRunningAsync({"s-j0", first, 1}, provenance, running.Done());
  ASSERT_TRUE(running.Wait().ok());
  v1::Job job = store_->GetJob("s-j0").value();
  EXPECT_EQ(job.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job.provenance().code_version(), "0.1.0+0123abcd");

  ASSERT_TRUE(store_
                  ->EndAttempt("s-j0", first, v1::ATTEMPT_STATE_LOST, {}, v1::JOB_STATE_PENDING,
                               "worker lost", std::nullopt)
                  .ok());
  ASSERT_TRUE(store_->StartAttempt("s-j0", "w2").ok());
  EXPECT_FALSE(store_->GetJob("s-j0").value().has_provenance());
}

TEST_F(StoreReportsTest, HeartbeatsStampLastSeenAndOldDisconnectsAreForgotten) {
  StoreOptions options;
  options.worker_retention = absl::Hours(1);
  Reopen(options);
  v1::WorkerInfo info;
  info.set_worker_id("gone");
  ASSERT_TRUE(store_->UpsertWorker(info, true).ok());
  info.set_worker_id("live");
  ASSERT_TRUE(store_->UpsertWorker(info, true).ok());
  clock_.Advance(absl::Minutes(1));
  Outcome touched;
  store_->TouchWorkerAsync("live", touched.Done());
  ASSERT_TRUE(touched.Wait().ok());
  Outcome unknown;
  store_->TouchWorkerAsync("never", unknown.Done());
  EXPECT_EQ(unknown.Wait().code(), absl::StatusCode::kNotFound);
  info.set_worker_id("gone");
  ASSERT_TRUE(store_->UpsertWorker(info, false).ok());

  std::vector<v1::Worker> workers = store_->ListWorkers().value();
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_EQ(workers[1].info().worker_id(), "live");
  EXPECT_EQ(workers[1].last_seen().seconds() - workers[1].connected_at().seconds(), 60);

  clock_.Advance(absl::Hours(2));  // "live" stays connected, silent: kept
  workers = store_->ListWorkers().value();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].info().worker_id(), "live");
}

TEST_F(StoreReportsTest, JobsArePagedAndSnapshotsCarryTheirVersion) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 10), 3).ok());
  ASSERT_TRUE(store_->StartAttempt("s-j4", "w1").ok());
  ASSERT_TRUE(store_->StartAttempt("s-j7", "w1").ok());

  std::vector<v1::Job> page = store_->ListJobs("s", JobQuery{3, 4, {}}).value();
  ASSERT_EQ(page.size(), 4u);
  EXPECT_EQ(page.front().spec().index(), 3u);
  EXPECT_EQ(page.back().spec().index(), 6u);
  page = store_->ListJobs("s", JobQuery{5, 10, {v1::JOB_STATE_ASSIGNED}}).value();
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].spec().job_id(), "s-j7");
  EXPECT_EQ(store_->ListJobs("nope", JobQuery{}).status().code(), absl::StatusCode::kNotFound);

  v1::SweepSnapshot snapshot = store_->Snapshot("s", JobQuery{0, 2, {}}).value();
  EXPECT_FALSE(snapshot.delta());
  EXPECT_EQ(snapshot.version(), store_->Version());
  EXPECT_EQ(snapshot.jobs_size(), 2);
  EXPECT_EQ(snapshot.sweep().counts().assigned(), 2u);
  EXPECT_EQ(snapshot.sweep().counts().total(), 10u);

  // Versions keep growing across a restart.
  const int64_t version = store_->Version();
  EXPECT_GE(version, 3);
  Reopen();
  EXPECT_EQ(store_->Version(), version);
  ASSERT_TRUE(store_->StartAttempt("s-j0", "w1").ok());
  EXPECT_GT(store_->Version(), version);
}

// Several states are one filter: a page holds the first jobs in any of them from start_index,
// in index order, as a page of one state does.
TEST_F(StoreReportsTest, APageOfSeveralStatesIsTheirUnionInIndexOrder) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 10), 3).ok());
  ASSERT_TRUE(store_->StartAttempt("s-j4", "w1").ok());
  ASSERT_TRUE(store_->StartAttempt("s-j7", "w1").ok());
  ASSERT_TRUE(store_->CancelJobs({"s-j2", "s-j8"}, "asked").ok());
  auto ids = [&](const JobQuery& query) {
    std::vector<std::string> out;
    absl::StatusOr<std::vector<v1::Job>> page = store_->ListJobs("s", query);
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const v1::Job& job : *page) out.push_back(job.spec().job_id());
    }
    return out;
  };
  const std::vector<v1::JobState> both = {v1::JOB_STATE_CANCELLED, v1::JOB_STATE_ASSIGNED};
  EXPECT_THAT(ids({0, 0, both}), ::testing::ElementsAre("s-j2", "s-j4", "s-j7", "s-j8"));
  EXPECT_THAT(ids({3, 2, both}), ::testing::ElementsAre("s-j4", "s-j7"));
  EXPECT_THAT(ids({8, 5, both}), ::testing::ElementsAre("s-j8"));
  // A state given twice is one state; a state no job is in adds none.
  EXPECT_THAT(ids({0, 0, {v1::JOB_STATE_ASSIGNED, v1::JOB_STATE_FAILED, v1::JOB_STATE_ASSIGNED}}),
              ::testing::ElementsAre("s-j4", "s-j7"));
  EXPECT_EQ(ids({0, 0, {}}).size(), 10u);
}

}  // namespace
}  // namespace ablate::coordinator
