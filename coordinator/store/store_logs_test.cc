// Job logs in the store: an ended attempt's tail survives closing and reopening the file, one
// per job (the newest attempt's), bounded; and a file of the schema before job logs existed
// is migrated with its jobs intact.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "coordinator/store/schema.h"
#include "coordinator/store/sqlite_db.h"
#include "coordinator/store/store.h"
#include "coordinator/testing/fixtures.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using testing::MakeJobs;
using testing::MakeSweep;

v1::JobLog Log(const std::string& job_id, uint64_t attempt_id,
               const std::vector<std::string>& lines) {
  v1::JobLog log;
  log.set_job_id(job_id);
  log.set_attempt_id(attempt_id);
  for (const std::string& line : lines) log.add_lines(line);
  log.mutable_updated_at()->set_seconds(1'800'000'000);
  return log;
}

class StoreLogsTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // Closes the file (the store finishes its queued writes) and opens it again.
  void Reopen() {
    store_.reset();
    store_ = Store::Open(path_, clock_).value();
  }

  // Starts an attempt of `job_id` and ends it FAILED, the job queued again; returns its id.
  uint64_t RunAndEnd(const std::string& job_id) {
    const uint64_t attempt = store_->StartAttempt(job_id, "w1").value().id();
    EXPECT_TRUE(store_
                    ->EndAttempt(job_id, attempt, v1::ATTEMPT_STATE_FAILED, {},
                                 v1::JOB_STATE_PENDING, "retry", std::nullopt)
                    .ok());
    return attempt;
  }

  absl::Status Save(v1::JobLog log) {
    absl::Notification done;
    absl::Status status;
    store_->SaveJobLogAsync(std::move(log), [&](absl::Status s) {
      status = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();
    return status;
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  std::string path_ = dir_.File("ablate.db");
  std::unique_ptr<Store> store_;
};

TEST_F(StoreLogsTest, AStoredLogSurvivesReopeningTheFile) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 2), 3).ok());
  EXPECT_EQ(store_->ReadJobLog("s-j0").value().attempt_id(), 0u);  // none stored yet
  const uint64_t attempt = RunAndEnd("s-j0");
  v1::JobLog log = Log("s-j0", attempt, {"step 9 loss 2.5", "done after 10 steps"});
  log.set_truncated(true);
  ASSERT_TRUE(Save(log).ok());

  Reopen();
  EXPECT_EQ(store_->ReadJobLog("s-j0").value().SerializeAsString(), log.SerializeAsString());
  const v1::JobLog other = store_->ReadJobLog("s-j1").value();
  EXPECT_EQ(other.job_id(), "s-j1");
  EXPECT_EQ(other.attempt_id(), 0u);
  EXPECT_EQ(store_->ReadJobLog("no-such-job").value().lines_size(), 0);
}

TEST_F(StoreLogsTest, AJobKeepsItsNewestAttemptsLogOnly) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 2), 3).ok());
  const uint64_t first = RunAndEnd("s-j0");
  const uint64_t second = RunAndEnd("s-j0");
  ASSERT_TRUE(Save(Log("s-j0", first, {"first"})).ok());
  ASSERT_TRUE(Save(Log("s-j0", second, {"second"})).ok());
  // The first attempt's, saved late (its end reported after the second's): nothing changes.
  ASSERT_TRUE(Save(Log("s-j0", first, {"first, late"})).ok());
  v1::JobLog stored = store_->ReadJobLog("s-j0").value();
  EXPECT_EQ(stored.attempt_id(), second);
  ASSERT_EQ(stored.lines_size(), 1);
  EXPECT_EQ(stored.lines(0), "second");

  // An attempt that is not the job's changes nothing.
  const uint64_t of_other_job = RunAndEnd("s-j1");
  EXPECT_EQ(Save(Log("s-j0", of_other_job, {"not mine"})).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Save(Log("s-j0", second + 100, {"unknown"})).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadJobLog("s-j0").value().lines(0), "second");
}

TEST_F(StoreLogsTest, AStoredLogKeepsItsNewestLinesWithinTheBound) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 1), 3).ok());
  const uint64_t attempt = RunAndEnd("s-j0");
  const std::string line(1000, 'x');
  std::vector<std::string> lines;
  const size_t n = kMaxStoredLogBytes / line.size() + 10;
  for (size_t i = 0; i < n; ++i) lines.push_back(absl::StrCat(i, line));
  ASSERT_TRUE(Save(Log("s-j0", attempt, lines)).ok());

  const v1::JobLog stored = store_->ReadJobLog("s-j0").value();
  EXPECT_TRUE(stored.truncated());
  size_t bytes = 0;
  for (const std::string& l : stored.lines()) bytes += l.size();
  EXPECT_LE(bytes, kMaxStoredLogBytes);
  EXPECT_GT(bytes, kMaxStoredLogBytes - 2 * lines.back().size());
  EXPECT_EQ(stored.lines(stored.lines_size() - 1), lines.back());
}

// A file as the release before job logs left it (schema version 5), with a sweep whose job
// ran: opening it adds job logs and keeps the job.
TEST_F(StoreLogsTest, MigratesAFileOfTheSchemaBeforeJobLogs) {
  store_.reset();
  const std::string old_path = dir_.File("v5.db");
  {
    auto db = internal::Db::Open(old_path, /*create=*/true).value();
    ASSERT_TRUE(internal::Migrate(*db, 5).ok());
    const v1::JobSpec spec = MakeJobs("old", 1)[0];
    auto sweep =
        db->Prepare("INSERT INTO sweeps (id, name, spec, created_at) VALUES ('old', 'old', ?1, 0)")
            .value();
    ASSERT_TRUE(sweep.BindBlob(1, MakeSweep("old").spec().SerializeAsString()).Run().ok());
    auto job = db->Prepare(
                     "INSERT INTO jobs (id, sweep_id, idx, spec, state, max_attempts, "
                     "created_at, updated_at) VALUES (?1, 'old', 0, ?2, ?3, 3, 0, 0)")
                   .value();
    ASSERT_TRUE(job.Bind(1, spec.job_id())
                    .BindBlob(2, spec.SerializeAsString())
                    .Bind(3, int64_t{v1::JOB_STATE_PENDING})
                    .Run()
                    .ok());
    ASSERT_TRUE(db->Exec(absl::StrCat("INSERT INTO sweep_counts (sweep_id, state, n) VALUES "
                                      "('old', ",
                                      v1::JOB_STATE_PENDING, ", 1)"))
                    .ok());
    auto version = db->Prepare("PRAGMA user_version").value();
    ASSERT_TRUE(version.Step().value());
    ASSERT_EQ(version.Int(0), 5);
  }
  path_ = old_path;
  Reopen();
  {
    auto db = internal::Db::Open(old_path, /*create=*/false).value();
    auto version = db->Prepare("PRAGMA user_version").value();
    ASSERT_TRUE(version.Step().value());
    EXPECT_EQ(version.Int(0), internal::CurrentSchemaVersion());
  }
  EXPECT_EQ(store_->GetJob("old-j0").value().state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(store_->ReadJobLog("old-j0").value().attempt_id(), 0u);
  const uint64_t attempt = RunAndEnd("old-j0");
  ASSERT_TRUE(Save(Log("old-j0", attempt, {"after the upgrade"})).ok());
  Reopen();
  EXPECT_EQ(store_->ReadJobLog("old-j0").value().lines(0), "after the upgrade");
}

}  // namespace
}  // namespace ablate::coordinator
