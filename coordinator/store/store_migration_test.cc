// Files written by older releases, opened by this one: each migration keeps what the file held
// and fills what its schema adds. The old files are made by running the migrations up to their
// version and inserting rows as that release wrote them.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/store/schema.h"
#include "coordinator/store/sqlite_db.h"
#include "coordinator/store/store.h"
#include "coordinator/testing/fixtures.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using testing::MakeJobs;
using testing::MakeSweep;

// A job row as a release before `dropped` and the attempt facts wrote it.
struct OldJob {
  v1::JobState state = v1::JOB_STATE_PENDING;
  int64_t attempts = 0;
  int64_t max_attempts = 3;
  bool dropped = false;
};

class StoreMigrationTest : public ::testing::Test {
 protected:
  // A file at schema `version` holding sweep "s" with `jobs` (s-j0, s-j1, ...) and the counts
  // by state that release kept, which counted dropped jobs by their state.
  std::unique_ptr<internal::Db> OldFile(int version, const std::vector<OldJob>& jobs) {
    auto db = internal::Db::Open(path_, /*create=*/true).value();
    EXPECT_TRUE(internal::Migrate(*db, version).ok());
    auto sweep =
        db->Prepare("INSERT INTO sweeps (id, name, spec, created_at) VALUES ('s', 's', ?1, 0)")
            .value();
    EXPECT_TRUE(sweep.BindBlob(1, MakeSweep("s").spec().SerializeAsString()).Run().ok());
    auto insert = db->Prepare(
                        "INSERT INTO jobs (id, sweep_id, idx, spec, state, attempts, max_attempts, "
                        "current_attempt_id, created_at, updated_at, dropped) "
                        "VALUES (?1, 's', ?2, ?3, ?4, ?5, ?6, ?5, 0, 0, ?7)")
                      .value();
    const std::vector<v1::JobSpec> specs = MakeJobs("s", static_cast<int>(jobs.size()));
    for (size_t i = 0; i < jobs.size(); ++i) {
      EXPECT_TRUE(insert.Bind(1, specs[i].job_id())
                      .Bind(2, static_cast<int64_t>(i))
                      .BindBlob(3, specs[i].SerializeAsString())
                      .Bind(4, int64_t{jobs[i].state})
                      .Bind(5, jobs[i].attempts)
                      .Bind(6, jobs[i].max_attempts)
                      .Bind(7, int64_t{jobs[i].dropped ? 1 : 0})
                      .Run()
                      .ok());
      insert.Reset();
      EXPECT_TRUE(db->Exec(absl::StrCat("INSERT INTO sweep_counts (sweep_id, state, n) VALUES "
                                        "('s', ",
                                        jobs[i].state,
                                        ", 1) ON CONFLICT (sweep_id, state) DO "
                                        "UPDATE SET n = n + 1"))
                      .ok());
    }
    return db;
  }

  void Open() { store_ = Store::Open(path_, clock_).value(); }

  testing::TempDir dir_;
  const std::string path_ = dir_.File("old.db");
  testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
};

// A file as the release before stored attempt facts left it (schema version 6): a job whose
// max_attempts grew by one for an interrupted attempt, whose first attempt its worker refused
// before starting a trainer. The refusal is marked never_started from its stored reason; the
// job keeps its grown budget with no uncounted attempts, which bounds its retries as before.
TEST_F(StoreMigrationTest, MarksRefusedAttemptsAndKeepsGrownBudgets) {
  {
    auto db = OldFile(6, {{.state = v1::JOB_STATE_PENDING, .attempts = 2, .max_attempts = 4}});
    auto attempt = db->Prepare(
                         "INSERT INTO attempts (job_id, worker_id, state, exit, started_at, "
                         "ended_at) VALUES ('s-j0', 'w1', ?1, ?2, 0, 1)")
                       .value();
    for (const auto& [state, reason] :
         {std::pair{v1::ATTEMPT_STATE_LOST, "not started: no free slot: slot 0 is busy"},
          std::pair{v1::ATTEMPT_STATE_FAILED, "CUDA error"}}) {
      v1::ExitStatus exit;
      exit.set_reason(reason);
      ASSERT_TRUE(attempt.Bind(1, int64_t{state}).BindBlob(2, exit.SerializeAsString()).Run().ok());
      attempt.Reset();
    }
  }
  Open();
  const v1::Job job = store_->GetJob("s-j0").value();
  EXPECT_EQ(job.attempts(), 2u);
  EXPECT_EQ(job.max_attempts(), 4u);
  EXPECT_EQ(job.uncounted_attempts(), 0u);
  const std::vector<v1::Attempt> attempts = store_->ListAttempts("s-j0").value();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_TRUE(attempts[0].never_started());
  EXPECT_FALSE(attempts[1].never_started());
}

// A file of the release before dropped jobs were counted apart (schema version 6), whose counts
// hold a dropped job by its state: opening it counts that job apart, and later changes of the
// flag move it between the counts.
TEST_F(StoreMigrationTest, CountsDroppedJobsApart) {
  OldFile(6,
          {{.state = v1::JOB_STATE_SUCCEEDED}, {.state = v1::JOB_STATE_FAILED, .dropped = true}});
  Open();
  v1::Sweep sweep = store_->GetSweep("s").value();
  EXPECT_EQ(sweep.counts().total(), 1u);
  EXPECT_EQ(sweep.counts().succeeded(), 1u);
  EXPECT_EQ(sweep.counts().failed(), 0u);
  EXPECT_EQ(sweep.counts().dropped(), 1u);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_COMPLETED);

  ASSERT_TRUE(store_->AddJobs(MakeSweep("s"), {}, {"s-j0"}, 3).ok());  // s-j1 back, s-j0 out
  sweep = store_->GetSweep("s").value();
  EXPECT_EQ(sweep.counts().total(), 1u);
  EXPECT_EQ(sweep.counts().succeeded(), 0u);
  EXPECT_EQ(sweep.counts().failed(), 1u);
  EXPECT_EQ(sweep.counts().dropped(), 1u);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_FAILED);
}

}  // namespace
}  // namespace ablate::coordinator
