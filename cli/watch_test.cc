#include "cli/watch.h"

#include <sstream>

#include "absl/strings/match.h"
#include "cli/table.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace ablate::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::SweepSnapshot Snapshot(const char* jobs_state_a, int step_a, const char* done) {
  v1::SweepSnapshot snapshot;
  const std::string text = std::string(R"pb(
                             sweep {
                               id: "grid-0123abcd"
                               spec {
                                 name: "grid"
                                 grid {
                                   name: "seed"
                                   values: [ "1", "2" ]
                                 }
                               }
                               state: SWEEP_STATE_ACTIVE
                             }
                             jobs { spec {
                               job_id: "grid-0123abcd-aaaaaa"
                               sweep_id: "grid-0123abcd"
                               cell { dimension: "seed" value: "1" }
                             }
                                    state:)pb") +
                           jobs_state_a + " step: " + std::to_string(step_a) + R"pb(
    }
    jobs {
      spec {
        job_id: "grid-0123abcd-bbbbbb"
        sweep_id: "grid-0123abcd"
        cell { dimension: "seed" value: "2" }
      }
      state: JOB_STATE_PENDING
    }
  )pb";
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &snapshot));
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
      done, snapshot.mutable_sweep()->mutable_counts()));
  return snapshot;
}

const absl::Time kNoon =
    absl::FromCivil(absl::CivilSecond(2026, 11, 23, 12, 1, 3), absl::UTCTimeZone());

TEST(ProgressBarTest, FillsInProportion) {
  EXPECT_EQ(ProgressBar(0, 4, 8), "[--------]");
  EXPECT_EQ(ProgressBar(2, 4, 8), "[####----]");
  EXPECT_EQ(ProgressBar(4, 4, 8), "[########]");
  EXPECT_EQ(ProgressBar(0, 0, 4), "[----]");
}

TEST(ChangeLinesTest, FirstSnapshotNamesTheSweep) {
  const auto first = Snapshot("JOB_STATE_PENDING", 0, "total: 2 pending: 2");
  EXPECT_THAT(ChangeLines(nullptr, first, kNoon, absl::UTCTimeZone()),
              ElementsAre("[12:01:03] 0/2 done · sweep grid-0123abcd ACTIVE: 2 jobs: 2 pending"));
}

// A tuned sweep's total grows as rungs end: the count says more jobs may come while it runs.
TEST(ChangeLinesTest, ATunedSweepsCountSaysMoreMayCome) {
  auto first = Snapshot("JOB_STATE_PENDING", 0, "total: 2 pending: 2");
  first.mutable_sweep()->mutable_spec()->mutable_tuning()->set_min_steps(10);
  EXPECT_THAT(ChangeLines(nullptr, first, kNoon, absl::UTCTimeZone()),
              ElementsAre("[12:01:03] 0/2 done (tuning adds more) · sweep grid-0123abcd ACTIVE: 2 "
                          "jobs: 2 pending"));
}

TEST(ChangeLinesTest, OneLinePerChangedJob) {
  const auto before = Snapshot("JOB_STATE_PENDING", 0, "total: 2 pending: 2");
  const auto after = Snapshot("JOB_STATE_RUNNING", 40, "total: 2 pending: 1 running: 1");
  EXPECT_THAT(ChangeLines(&before, after, kNoon, absl::UTCTimeZone()),
              ElementsAre("[12:01:03] 0/2 done · job grid-0123abcd-aaaaaa RUNNING step 40"));
  EXPECT_TRUE(ChangeLines(&after, after, kNoon, absl::UTCTimeZone()).empty());
}

// A running job's losses are the last logged, maybe of an earlier step: said so; an ended
// job's evaluation is its final one.
TEST(ChangeLinesTest, LossesSayWhetherTheyAreTheLastOrTheFinal) {
  const auto before = Snapshot("JOB_STATE_PENDING", 0, "total: 2 pending: 2");
  auto running = Snapshot("JOB_STATE_RUNNING", 40, "total: 2 pending: 1 running: 1");
  running.mutable_jobs(0)->set_last_loss(2.5);
  running.mutable_jobs(0)->set_last_eval_loss(2.75);
  EXPECT_THAT(ChangeLines(&before, running, kNoon, absl::UTCTimeZone()),
              ElementsAre("[12:01:03] 0/2 done · job grid-0123abcd-aaaaaa RUNNING step 40 last "
                          "loss 2.5000 last eval loss 2.7500"));
  auto ended = Snapshot("JOB_STATE_SUCCEEDED", 50, "total: 2 pending: 1 succeeded: 1");
  ended.mutable_jobs(0)->set_last_loss(2.25);
  ended.mutable_jobs(0)->set_final_eval_loss(2.5);
  EXPECT_THAT(ChangeLines(&running, ended, kNoon, absl::UTCTimeZone()),
              ElementsAre("[12:01:03] 1/2 done · job grid-0123abcd-aaaaaa SUCCEEDED step 50 "
                          "loss 2.2500 final eval loss 2.5000"));
}

TEST(WatchViewTest, PlainOutputHasNoEscapeCodes) {
  std::ostringstream out;
  WatchView view(out, /*interactive=*/false, absl::UTCTimeZone());
  view.Update(Snapshot("JOB_STATE_PENDING", 0, "total: 2 pending: 2"), kNoon, {});
  view.Update(Snapshot("JOB_STATE_SUCCEEDED", 200, "total: 2 succeeded: 1 pending: 1"), kNoon, {});
  view.Clear();
  EXPECT_FALSE(absl::StrContains(out.str(), "\x1b"));
  EXPECT_THAT(out.str(), HasSubstr("1/2 done · job grid-0123abcd-aaaaaa SUCCEEDED step 200\n"));
}

TEST(WatchViewTest, TerminalRedrawsInPlace) {
  std::ostringstream out;
  WatchView view(out, /*interactive=*/true, absl::UTCTimeZone());
  view.Update(Snapshot("JOB_STATE_PENDING", 0, "total: 2 pending: 2"), kNoon, {80, 24});
  EXPECT_FALSE(absl::StrContains(out.str(), "\x1b[4F"));
  view.Update(Snapshot("JOB_STATE_RUNNING", 5, "total: 2 running: 1 pending: 1"), kNoon, {80, 24});
  // The second frame moves up over the first's four lines: sweep, header, two jobs.
  EXPECT_THAT(out.str(), HasSubstr("\x1b[4F"));
  view.Clear();
  EXPECT_TRUE(absl::EndsWith(out.str(), "\x1b[4F\x1b[J"));
}

TEST(LiveLinesTest, ShowsRunningJobsFirstWhenTheyDoNotFit) {
  auto snapshot = Snapshot("JOB_STATE_PENDING", 0, "total: 3 running: 1 pending: 2");
  snapshot.mutable_jobs(1)->set_state(v1::JOB_STATE_RUNNING);
  *snapshot.add_jobs() = snapshot.jobs(0);
  // Five rows: the sweep, the header, one job, the count of the rest, a free line.
  const std::vector<std::string> lines = LiveLines(snapshot, {80, 5});
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_THAT(lines[1], HasSubstr("JOB"));
  EXPECT_THAT(lines[2], ::testing::StartsWith("bbbbbb  2  "));
  EXPECT_EQ(lines[3], "… 2 more jobs");
}

TEST(LiveLinesTest, CutsLinesToTheTerminalWidth) {
  const auto snapshot = Snapshot("JOB_STATE_RUNNING", 5, "total: 2 running: 1 pending: 1");
  const std::vector<std::string> wide = LiveLines(snapshot, {200, 24});
  const std::vector<std::string> narrow = LiveLines(snapshot, {30, 24});
  ASSERT_EQ(narrow.size(), wide.size());
  ASSERT_EQ(narrow.size(), 4u);  // sweep, header, two jobs
  bool cut = false;
  for (size_t i = 0; i < wide.size(); ++i) {
    // Each line is the wide one's first 30 code points: cut, never wrapped or dropped.
    EXPECT_EQ(narrow[i], TruncateToWidth(wide[i], 30)) << wide[i];
    cut = cut || DisplayWidth(wide[i]) > 30;
  }
  EXPECT_TRUE(cut) << "no line was wider than 30 columns, so nothing was tested";
}

TEST(LiveLinesTest, SaysWhyJobsWait) {
  auto snapshot = Snapshot("JOB_STATE_PENDING", 0, "total: 2 pending: 2");
  for (v1::Job& job : *snapshot.mutable_jobs()) job.set_message("no worker has a GPU");
  const std::vector<std::string> lines = LiveLines(snapshot, {80, 24});
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[1], "2 jobs PENDING: no worker has a GPU");
}

TEST(ChangeLinesTest, PendingJobsWithAReasonAreGroupedByIt) {
  auto waiting = Snapshot("JOB_STATE_PENDING", 0, "total: 2 pending: 2");
  for (v1::Job& job : *waiting.mutable_jobs()) job.set_message("needs 80 GiB, workers have 16");
  EXPECT_THAT(ChangeLines(nullptr, waiting, kNoon, absl::UTCTimeZone()),
              ElementsAre(::testing::_,
                          "[12:01:03] 0/2 done · 2 jobs PENDING: needs 80 GiB, workers have 16"));

  // A reason that appears later is a change too; one job alone is named.
  const auto before = Snapshot("JOB_STATE_PENDING", 0, "total: 2 pending: 2");
  auto after = before;
  after.mutable_jobs(1)->set_message("no worker connected");
  EXPECT_THAT(ChangeLines(&before, after, kNoon, absl::UTCTimeZone()),
              ElementsAre("[12:01:03] 0/2 done · job grid-0123abcd-bbbbbb PENDING: "
                          "no worker connected"));
}

}  // namespace
}  // namespace ablate::cli
