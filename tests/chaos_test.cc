// Exactly once under coordinator crashes: a sweep of 32 short real-trainer jobs on two
// ablate-worker daemons while the coordinator is killed with SIGKILL 20 times, at random
// moments while jobs run, and started again on the same port and database each time.
// Afterwards the store must show every job ended once, SUCCEEDED, by one successful attempt,
// with every logged step of its loss curve stored exactly once and its final evaluation loss
// kept. In the long set: about a minute on two cores for each test.
#include <signal.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "ablate/v1/metrics.pb.h"
#include "ablate/v1/sweep_service.grpc.pb.h"
#include "ablate/v1/trainer.pb.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "coordinator/store/store.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

namespace ablate {
namespace {

constexpr int kJobs = 32;
// Long enough that 20 kills, 0.2 to 2.5 s apart, fall while jobs run on two cores (at 300 steps
// the sweep ended after 13, once the trainer had grown faster).
constexpr int kSteps = 1000;
constexpr int kKills = 20;
constexpr absl::Duration kSweepTimeout = absl::Minutes(8);
// Every worker id either test starts; each gets its own token.
const std::vector<std::string> kWorkers = {"chaos-1", "chaos-2", "first", "second"};

// Every metric point stored for one job, with its attempt, in storage order: the reports
// (layout v2, one row per report, its points a serialized v1::MetricBatch) read from the
// database file itself rather than through the store, whose reads show a step reported twice
// once and would hide a duplicate.
std::vector<std::pair<int64_t, v1::MetricPoint>> StoredPoints(const std::string& db_path,
                                                              const std::string& job_id) {
  std::vector<std::pair<int64_t, v1::MetricPoint>> points;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* query = nullptr;
    sqlite3_prepare_v2(db,
                       "SELECT r.attempt_id, r.points FROM metric_reports r JOIN jobs j "
                       "ON j.rowid = r.job WHERE j.id = ?1 ORDER BY r.rowid",
                       -1, &query, nullptr);
    sqlite3_bind_text(query, 1, job_id.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(query) == SQLITE_ROW) {
      v1::MetricBatch batch;
      EXPECT_TRUE(
          batch.ParseFromArray(sqlite3_column_blob(query, 1), sqlite3_column_bytes(query, 1)));
      for (const v1::MetricPoint& point : batch.points()) {
        points.emplace_back(sqlite3_column_int64(query, 0), point);
      }
    }
    sqlite3_finalize(query);
  }
  sqlite3_close(db);
  return points;
}

// Points stored for each step of one job's series.
std::map<int64_t, int64_t> RowsPerStep(const std::string& db_path, const std::string& job_id,
                                       const std::string& name) {
  std::map<int64_t, int64_t> rows;
  for (const auto& [attempt, point] : StoredPoints(db_path, job_id)) {
    if (point.name() == name) ++rows[point.step()];
  }
  return rows;
}

// The first step of the training loss each attempt of one job stored.
std::map<int64_t, int64_t> FirstStepByAttempt(const std::string& db_path,
                                              const std::string& job_id) {
  std::map<int64_t, int64_t> first;
  for (const auto& [attempt, point] : StoredPoints(db_path, job_id)) {
    if (point.name() != "train/loss") continue;
    auto [it, fresh] = first.try_emplace(attempt, point.step());
    if (!fresh) it->second = std::min(it->second, point.step());
  }
  return first;
}

class ChaosTest : public test::ClusterTest {
 protected:
  // (Re)starts the coordinator on the port its workers know.
  void StartCoordinator() {
    auto coordinator = test::TestCoordinator::Start(bin_dir_, dir_, {}, port_, kWorkers);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = std::move(*coordinator);
    port_ = coordinator_->grpc_port();
  }

  int port_ = 0;
};

TEST_F(ChaosTest, TwentySigkillsOfTheCoordinatorLoseAndRepeatNothing) {
  StartCoordinator();
  for (int i = 1; i <= 2; ++i) {
    auto worker = StartNamedWorker(absl::StrCat("chaos-", i), /*slots=*/2);
    ASSERT_TRUE(worker.ok()) << worker.status();
    workers_.push_back(std::move(*worker));
  }
  absl::Status submitted = Submit(WriteTinySweep(kJobs, kSteps));
  ASSERT_TRUE(submitted.ok()) << submitted;

  // Kills at random moments (a fixed seed, so a failure can be replayed): between 0.2 and
  // 2.5 s after the coordinator came back, whatever it was doing.
  std::mt19937 rng(20261129);
  std::uniform_int_distribution<int> pause_ms(200, 2500);
  int kills = 0;
  const absl::Time deadline = absl::Now() + kSweepTimeout;
  for (;;) {
    ASSERT_LT(absl::Now(), deadline) << "the sweep did not end\n" << Logs();
    absl::SleepFor(absl::Milliseconds(pause_ms(rng)));
    absl::StatusOr<v1::Sweep> sweep = OnlySweep();
    ASSERT_TRUE(sweep.ok()) << sweep.status();
    const v1::JobCounts& counts = sweep->counts();
    if (counts.succeeded() + counts.failed() + counts.cancelled() == counts.total()) break;
    if (kills < kKills) {
      coordinator_->process().Signal(SIGKILL);
      ASSERT_TRUE(coordinator_->process().WaitFor(absl::Seconds(10)).ok());
      coordinator_.reset();
      ++kills;
      StartCoordinator();
    }
  }
  // Every kill fell while jobs were still running; else the jobs are too short for the test.
  ASSERT_EQ(kills, kKills) << "the sweep ended after " << kills << " kills";
  ASSERT_TRUE(coordinator_->Stop().ok());
  coordinator_.reset();

  auto store = coordinator::Store::Open(dir_ + "/a.db", RealClock());
  ASSERT_TRUE(store.ok()) << store.status();
  auto sweeps = (*store)->ListSweeps();
  ASSERT_TRUE(sweeps.ok());
  ASSERT_EQ(sweeps->size(), 1u);
  auto jobs = (*store)->ListJobs(sweeps->front().id());
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), static_cast<size_t>(kJobs));
  for (const v1::Job& job : *jobs) {
    SCOPED_TRACE(job.spec().job_id());
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.message() << Logs();
    EXPECT_EQ(job.step(), kSteps);
    EXPECT_TRUE(job.has_final_eval_loss());

    auto attempts = (*store)->ListAttempts(job.spec().job_id());
    ASSERT_TRUE(attempts.ok());
    int succeeded = 0;
    for (const v1::Attempt& attempt : *attempts) {
      succeeded += attempt.state() == v1::ATTEMPT_STATE_SUCCEEDED;
    }
    EXPECT_EQ(succeeded, 1) << attempts->size() << " attempts";

    // Every logged step stored once: a point resent after a reconnect is stored once, none
    // goes missing, and no second attempt logged the steps again.
    std::map<int64_t, int64_t> expected;
    for (int step = 1; step <= kSteps; ++step) expected[step] = 1;
    EXPECT_EQ(RowsPerStep(dir_ + "/a.db", job.spec().job_id(), "train/loss"), expected);
    EXPECT_EQ(RowsPerStep(dir_ + "/a.db", job.spec().job_id(), "eval/loss"),
              (std::map<int64_t, int64_t>{{kSteps, 1}}));
  }
}

// A trainer killed with SIGKILL is retried on its worker; a worker killed with SIGKILL loses
// its job after one lease, and another worker takes it. Each new attempt resumes from the last
// checkpoint (every 20 steps) rather than from step 0.
TEST_F(ChaosTest, LostTrainersAndWorkersResumeFromTheLastCheckpoint) {
  constexpr int kLongSteps = 600;
  auto coordinator =
      test::TestCoordinator::Start(bin_dir_, dir_, {"--lease-timeout-s", "3"}, 0, kWorkers);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  coordinator_ = std::move(*coordinator);
  auto first = StartNamedWorker("first", 1);
  ASSERT_TRUE(first.ok()) << first.status();
  workers_.push_back(std::move(*first));
  absl::Status submitted = Submit(WriteTinySweep(/*jobs=*/1, kLongSteps));
  ASSERT_TRUE(submitted.ok()) << submitted;

  // The trainer dies; its worker reports the signal and the job is retried.
  absl::StatusOr<v1::Job> job =
      WaitForOnlyJob([](const v1::Job& j) { return j.step() >= 30; }, absl::Minutes(3));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  std::ifstream pid_file(
      absl::StrCat(dir_, "/first/trainer-pids/attempt-", job->current_attempt_id(), ".pid"));
  pid_t trainer = 0;
  ASSERT_TRUE(pid_file >> trainer);
  ASSERT_EQ(kill(trainer, SIGKILL), 0);
  job = WaitForOnlyJob([&](const v1::Job& j) { return j.attempts() == 2 && j.step() >= 70; },
                       absl::Minutes(3));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();

  // The worker dies; after its lease the job moves to a worker that joined later.
  workers_.front()->Signal(SIGKILL);
  ASSERT_TRUE(workers_.front()->WaitFor(absl::Seconds(10)).ok());
  auto second = StartNamedWorker("second", 1);
  ASSERT_TRUE(second.ok()) << second.status();
  workers_.push_back(std::move(*second));
  job = WaitForOnlyJob([](const v1::Job& j) { return j.state() == v1::JOB_STATE_SUCCEEDED; },
                       absl::Minutes(5));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  EXPECT_EQ(job->attempts(), 3u);
  EXPECT_EQ(job->worker_id(), "second");
  EXPECT_EQ(job->step(), kLongSteps);

  const std::map<int64_t, int64_t> first_steps =
      FirstStepByAttempt(dir_ + "/a.db", job->spec().job_id());
  ASSERT_EQ(first_steps.size(), 3u);
  auto attempt = first_steps.begin();
  EXPECT_EQ(attempt->second, 1);  // a fresh start
  const int64_t second_from = (++attempt)->second - 1;
  const int64_t third_from = (++attempt)->second - 1;
  // Killed at step 30 or a little later: the newest checkpoint was step 20 (or 40).
  EXPECT_GE(second_from, 20);
  EXPECT_EQ(second_from % 20, 0);
  // Killed at step 70 or later: the newest checkpoint was at least step 60.
  EXPECT_GE(third_from, 60);
  EXPECT_EQ(third_from % 20, 0);
  RecordProperty("resumed_from_steps", absl::StrCat(second_from, ",", third_from));
}

}  // namespace
}  // namespace ablate
