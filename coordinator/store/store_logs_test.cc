// Job logs in the store: an ended attempt's tail survives closing and reopening the file, one
// per attempt for a job's newest kStoredLogsPerJob attempts, bounded; a file of the schema
// before job logs existed is migrated with its jobs intact, and one of the schema that kept a
// log per job keeps that log.
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
  EXPECT_EQ(store_->ReadJobLog("s-j0", 0).value().attempt_id(), 0u);  // none stored yet
  const uint64_t attempt = RunAndEnd("s-j0");
  v1::JobLog log = Log("s-j0", attempt, {"step 9 loss 2.5", "done after 10 steps"});
  log.set_truncated(true);
  ASSERT_TRUE(Save(log).ok());

  Reopen();
  EXPECT_EQ(store_->ReadJobLog("s-j0", 0).value().SerializeAsString(), log.SerializeAsString());
  const v1::JobLog other = store_->ReadJobLog("s-j1", 0).value();
  EXPECT_EQ(other.job_id(), "s-j1");
  EXPECT_EQ(other.attempt_id(), 0u);
  EXPECT_EQ(store_->ReadJobLog("no-such-job", 0).value().lines_size(), 0);
}

TEST_F(StoreLogsTest, EachAttemptKeepsItsLogForAJobsNewestAttempts) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 2), 100).ok());
  const uint64_t first = RunAndEnd("s-j0");
  const uint64_t second = RunAndEnd("s-j0");
  ASSERT_TRUE(Save(Log("s-j0", first, {"first"})).ok());
  ASSERT_TRUE(Save(Log("s-j0", second, {"second"})).ok());
  // The first attempt's again, later (its end reported after the second's): it replaces the
  // first's only, and 0 still reads the newest attempt's.
  ASSERT_TRUE(Save(Log("s-j0", first, {"first, late"})).ok());
  v1::JobLog stored = store_->ReadJobLog("s-j0", 0).value();
  EXPECT_EQ(stored.attempt_id(), second);
  ASSERT_EQ(stored.lines_size(), 1);
  EXPECT_EQ(stored.lines(0), "second");
  EXPECT_EQ(store_->ReadJobLog("s-j0", first).value().lines(0), "first, late");
  EXPECT_EQ(store_->ReadJobLog("s-j0", second + 100).value().attempt_id(), 0u);

  // An attempt that is not the job's changes nothing.
  const uint64_t of_other_job = RunAndEnd("s-j1");
  EXPECT_EQ(Save(Log("s-j0", of_other_job, {"not mine"})).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Save(Log("s-j0", second + 100, {"unknown"})).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadJobLog("s-j0", 0).value().lines(0), "second");
  EXPECT_EQ(store_->ReadJobLog("s-j0", of_other_job).value().attempt_id(), 0u);

  // Past kStoredLogsPerJob attempts the oldest logs go, and a late one older than every kept
  // one is not kept; the other job's log stays.
  ASSERT_TRUE(Save(Log("s-j1", of_other_job, {"other job"})).ok());
  std::vector<uint64_t> attempts = {first, second};
  for (int i = 2; i < kStoredLogsPerJob + 2; ++i) {
    attempts.push_back(RunAndEnd("s-j0"));
    ASSERT_TRUE(Save(Log("s-j0", attempts.back(), {absl::StrCat("attempt ", i)})).ok());
  }
  Reopen();
  EXPECT_EQ(store_->ReadJobLog("s-j0", first).value().attempt_id(), 0u);
  EXPECT_EQ(store_->ReadJobLog("s-j0", second).value().attempt_id(), 0u);
  ASSERT_TRUE(Save(Log("s-j0", first, {"first, later still"})).ok());
  EXPECT_EQ(store_->ReadJobLog("s-j0", first).value().attempt_id(), 0u);
  for (size_t i = 2; i < attempts.size(); ++i) {
    EXPECT_EQ(store_->ReadJobLog("s-j0", attempts[i]).value().lines(0),
              absl::StrCat("attempt ", i));
  }
  EXPECT_EQ(store_->ReadJobLog("s-j0", 0).value().attempt_id(), attempts.back());
  EXPECT_EQ(store_->ReadJobLog("s-j1", 0).value().lines(0), "other job");
}

TEST_F(StoreLogsTest, AStoredLogKeepsItsNewestLinesWithinTheBound) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 1), 3).ok());
  const uint64_t attempt = RunAndEnd("s-j0");
  const std::string line(1000, 'x');
  std::vector<std::string> lines;
  const size_t n = kMaxStoredLogBytes / line.size() + 10;
  for (size_t i = 0; i < n; ++i) lines.push_back(absl::StrCat(i, line));
  ASSERT_TRUE(Save(Log("s-j0", attempt, lines)).ok());

  const v1::JobLog stored = store_->ReadJobLog("s-j0", 0).value();
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
    ASSERT_EQ(internal::SchemaVersion(*db).value(), 5);
  }
  path_ = old_path;
  Reopen();
  {
    auto db = internal::Db::Open(old_path, /*create=*/false).value();
    EXPECT_EQ(internal::SchemaVersion(*db).value(), internal::CurrentSchemaVersion());
  }
  EXPECT_EQ(store_->GetJob("old-j0").value().state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(store_->ReadJobLog("old-j0", 0).value().attempt_id(), 0u);
  const uint64_t attempt = RunAndEnd("old-j0");
  ASSERT_TRUE(Save(Log("old-j0", attempt, {"after the upgrade"})).ok());
  Reopen();
  EXPECT_EQ(store_->ReadJobLog("old-j0", 0).value().lines(0), "after the upgrade");
}

// A file of schema version 8, which kept one log per job in job_logs: its log is then its
// attempt's, read by the attempt's id or as the job's newest.
TEST_F(StoreLogsTest, MigratesAFileThatKeptOneLogPerJob) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 1), 3).ok());
  const uint64_t attempt = RunAndEnd("s-j0");
  store_.reset();
  const v1::JobLog log = Log("s-j0", attempt, {"kept by version 8"});
  {
    auto db = internal::Db::Open(path_, /*create=*/false).value();
    // The file as version 8 left it: the table that version 9 replaced, with one row.
    ASSERT_TRUE(db->Exec("CREATE TABLE job_logs (job_id TEXT PRIMARY KEY REFERENCES jobs (id), "
                         "attempt_id INTEGER NOT NULL, log BLOB NOT NULL); DROP TABLE "
                         "attempt_logs; PRAGMA user_version = 8")
                    .ok());
    auto row =
        db->Prepare("INSERT INTO job_logs (job_id, attempt_id, log) VALUES (?1, ?2, ?3)").value();
    ASSERT_TRUE(row.Bind(1, std::string("s-j0"))
                    .Bind(2, static_cast<int64_t>(attempt))
                    .BindBlob(3, log.SerializeAsString())
                    .Run()
                    .ok());
  }
  Reopen();
  EXPECT_EQ(store_->ReadJobLog("s-j0", attempt).value().SerializeAsString(),
            log.SerializeAsString());
  EXPECT_EQ(store_->ReadJobLog("s-j0", 0).value().lines(0), "kept by version 8");
}

}  // namespace
}  // namespace ablate::coordinator
