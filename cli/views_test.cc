#include "cli/views.h"

#include <sstream>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace ablate::cli {
namespace {

using ::testing::HasSubstr;

template <typename T>
T Parse(const char* text) {
  T message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

v1::Sweep TwoDimensionSweep() {
  return Parse<v1::Sweep>(R"pb(
    id: "grid-0123abcd"
    spec {
      name: "grid"
      grid {
        name: "optimizer"
        values: [ "adamw", "soap" ]
      }
      grid {
        name: "seed"
        values: [ "1" ]
      }
    }
    state: SWEEP_STATE_ACTIVE
    counts { total: 2 running: 1 failed: 1 }
    created_at { seconds: 1700000000 }
  )pb");
}

Jobs TwoJobs() {
  return Parse<v1::SweepSnapshot>(R"pb(
           jobs {
             spec {
               job_id: "grid-0123abcd-aaaaaa"
               cell { dimension: "optimizer" value: "adamw" }
               cell { dimension: "seed" value: "1" }
             }
             state: JOB_STATE_RUNNING
             attempts: 1
             step: 40
             last_loss: 2.31
           }
           jobs {
             spec {
               job_id: "grid-0123abcd-bbbbbb"
               cell { dimension: "optimizer" value: "soap" }
               cell { dimension: "seed" value: "1" }
             }
             state: JOB_STATE_FAILED
             attempts: 3
             message: "trainer exited with code 1"
           }
         )pb")
      .jobs();
}

TEST(ViewsTest, StateNamesDropTheEnumPrefix) {
  EXPECT_EQ(JobStateName(v1::JOB_STATE_RUNNING), "RUNNING");
  EXPECT_EQ(SweepStateName(v1::SWEEP_STATE_COMPLETED), "COMPLETED");
}

TEST(ViewsTest, JobsTableHasAColumnPerDimension) {
  const std::string text = JobsTable(TwoDimensionSweep(), TwoJobs()).Render();
  EXPECT_EQ(text,
            "JOB                   optimizer  seed  STATE    ATTEMPTS  STEP    LOSS  EVAL LOSS  "
            "MESSAGE\n"
            "grid-0123abcd-aaaaaa  adamw      1     RUNNING         1    40  2.3100          -\n"
            "grid-0123abcd-bbbbbb  soap       1     FAILED          3     0       -          -  "
            "trainer exited with code 1\n");
}

// A running job shows its newest evaluation; a finished one its final evaluation.
TEST(ViewsTest, EvalLossIsTheNewestDuringTheRunThenTheFinalOne) {
  Jobs jobs = TwoJobs();
  jobs[0].set_last_eval_loss(2.5);
  EXPECT_THAT(JobsTable(TwoDimensionSweep(), jobs).Render(),
              HasSubstr("RUNNING         1    40  2.3100     2.5000\n"));
  jobs[0].set_final_eval_loss(2.25);
  EXPECT_THAT(JobsTable(TwoDimensionSweep(), jobs).Render(),
              HasSubstr("RUNNING         1    40  2.3100     2.2500\n"));
  EXPECT_EQ(EvalLossOf(jobs[1]), std::nullopt);
}

TEST(ViewsTest, JobsTableShowsOptimizerStateBytesOnceReported) {
  Jobs jobs = TwoJobs();
  jobs[0].mutable_provenance()->set_optimizer_state_bytes_per_parameter(2.03125);
  const std::string text = JobsTable(TwoDimensionSweep(), jobs).Render();
  EXPECT_EQ(text,
            "JOB                   optimizer  seed  STATE    ATTEMPTS  STEP    LOSS  EVAL LOSS  "
            "OPT B/PARAM  MESSAGE\n"
            "grid-0123abcd-aaaaaa  adamw      1     RUNNING         1    40  2.3100          -  "
            "       2.03\n"
            "grid-0123abcd-bbbbbb  soap       1     FAILED          3     0       -          -  "
            "          -  trainer exited with code 1\n");
}

TEST(ViewsTest, JobsTableMarksOtherCodeVersionsAndDroppedJobs) {
  Jobs jobs = TwoJobs();
  for (int i = 0; i < 2; ++i) {
    jobs[i].set_state(v1::JOB_STATE_SUCCEEDED);
    jobs[i].clear_message();
    jobs[i].mutable_updated_at()->set_seconds(100 + i);
  }
  jobs[0].mutable_provenance()->set_code_version("0.1.0+old");
  jobs[1].mutable_provenance()->set_code_version("0.1.0+new");
  jobs[1].set_dropped(true);
  EXPECT_EQ(NewestCodeVersion(jobs), "0.1.0+new");
  const std::string text = StatusText(TwoDimensionSweep(), jobs);
  EXPECT_THAT(text, HasSubstr("  adamw      1     SUCCEEDED*  "));
  EXPECT_THAT(text, HasSubstr("  soap       1     SUCCEEDED (dropped)  "));
  EXPECT_THAT(text, HasSubstr("\n* produced by code 0.1.0+old, not 0.1.0+new (the newest "
                              "result's)\n"));
  jobs[0].mutable_provenance()->set_code_version("0.1.0+new");
  EXPECT_EQ(CodeVersionLegend(jobs), "");
  EXPECT_THAT(JobsTable(TwoDimensionSweep(), jobs).Render(), ::testing::Not(HasSubstr("*")));
}

// ATTEMPTS counts what max_attempts limits, and the job's uncounted attempts apart: those its
// worker interrupted, and those before a retry, which grants the budget afresh. Both come from
// the job as stored, whatever the sweep's max_attempts is now.
TEST(ViewsTest, AttemptsNotCountedAgainstMaxAttemptsAreShownApart) {
  v1::Job job;
  const auto shown = [&](uint32_t attempts, uint32_t uncounted) {
    job.set_attempts(attempts);
    job.set_uncounted_attempts(uncounted);
    return AttemptsText(job);
  };
  EXPECT_EQ(shown(0, 0), "0");
  EXPECT_EQ(shown(2, 0), "2");
  // A drained worker's attempt, then two that failed.
  EXPECT_EQ(shown(3, 1), "2 (+1 not counted)");
  // One failed attempt, retried: none counted yet, then one.
  EXPECT_EQ(shown(1, 1), "0 (+1 not counted)");
  EXPECT_EQ(shown(2, 1), "1 (+1 not counted)");
  // The job's max_attempts and its sweep's play no part.
  job.set_max_attempts(7);
  EXPECT_EQ(shown(2, 1), "1 (+1 not counted)");

  Jobs jobs = TwoJobs();
  jobs[1].set_uncounted_attempts(1);
  EXPECT_THAT(JobsTable(TwoDimensionSweep(), jobs).Render(),
              HasSubstr("  FAILED   2 (+1 not counted)     0  "));
}

TEST(ViewsTest, WorkersTableGroupsAlikeSlotsAndSaysWhoIsGone) {
  const auto workers = Parse<v1::ListWorkersResponse>(R"pb(
    workers {
      info {
        worker_id: "gpu-0"
        hostname: "node-a"
        version: "0.1.0"
        slots { kind: DEVICE_KIND_CUDA index: 0 name: "NVIDIA H200" memory_bytes: 150000000000 }
        slots { kind: DEVICE_KIND_CUDA index: 1 name: "NVIDIA H200" memory_bytes: 150000000000 }
        slots { kind: DEVICE_KIND_CUDA index: 2 name: "NVIDIA H100" memory_bytes: 85000000000 }
      }
      connected: true
      free_slots: 1
      job_ids: [ "s-1", "s-2" ]
    }
    workers {
      info {
        worker_id: "cpu-0"
        hostname: "node-b"
        slots { kind: DEVICE_KIND_CPU index: 0 name: "cpu" }
      }
      last_seen { seconds: 1764936000 }
    }
  )pb");
  const std::string table = WorkersTable(workers, absl::UTCTimeZone()).Render();
  EXPECT_THAT(table, HasSubstr("gpu-0   node-a  connected"));
  EXPECT_THAT(
      table, HasSubstr("2 × NVIDIA H200, 139.7 GiB; 1 × NVIDIA H100, 79.2 GiB     1     2  0.1.0"));
  EXPECT_THAT(table,
              HasSubstr("cpu-0   node-b  gone (last seen 2025-12-05 12:00:00 UTC)  1 × CPU"));
}

TEST(ViewsTest, AWorkerBackingOffSaysWhyAndWhenItIsTriedAgain) {
  auto workers = Parse<v1::ListWorkersResponse>(R"pb(
    workers {
      info {
        worker_id: "n1"
        hostname: "node-a"
        slots { kind: DEVICE_KIND_CPU index: 0 name: "cpu" }
      }
      connected: true
      backoff {
        reason: "cannot run /opt/ablate-train: Permission denied"
        failures: 4
        retry_at { seconds: 1764936008 }
      }
    }
    workers {
      info { worker_id: "n2" }
      connected: true
      free_slots: 1
    }
  )pb");
  const absl::Time now = absl::FromUnixSeconds(1764936000) + absl::Milliseconds(400);
  EXPECT_THAT(WorkersTable(workers, absl::UTCTimeZone()).Render(),
              HasSubstr("n1      node-a  backing off  1 × CPU     0"));
  EXPECT_EQ(WorkerBackoffLines(workers, now),
            "n1: not taking work: cannot run /opt/ablate-train: Permission denied (4 failed "
            "starts in a row); next try in 8 s\n");
  // Its rest over: one job goes to it, and more once a trainer starts there.
  workers.mutable_workers(0)->mutable_backoff()->set_failures(1);
  EXPECT_EQ(WorkerBackoffLines(workers, now + absl::Seconds(9)),
            "n1: not taking work: cannot run /opt/ablate-train: Permission denied; trying one "
            "job until a trainer starts there\n");
  workers.mutable_workers(0)->clear_backoff();
  EXPECT_EQ(WorkerBackoffLines(workers, now), "");
}

TEST(ViewsTest, ShortJobIdDropsTheSweepId) {
  v1::Job job = TwoJobs()[0];
  EXPECT_EQ(ShortJobId(job), "grid-0123abcd-aaaaaa");  // no sweep_id in the spec
  job.mutable_spec()->set_sweep_id("grid-0123abcd");
  EXPECT_EQ(ShortJobId(job), "aaaaaa");
}

TEST(ViewsTest, CellValuesMatchDimensionsByName) {
  v1::Job job = TwoJobs()[0];
  job.mutable_spec()->mutable_cell()->DeleteSubrange(0, 1);  // only seed is left
  EXPECT_THAT(CellValues(TwoDimensionSweep(), job), ::testing::ElementsAre("", "1"));
}

// With repeats, the repeat's seed tells the runs of a cell apart: it gets a column.
TEST(ViewsTest, RepeatsAddTheSeedColumn) {
  v1::Sweep sweep = Parse<v1::Sweep>(R"pb(
    id: "study-00"
    spec {
      name: "study"
      grid {
        name: "optimizer"
        values: [ "adamw" ]
      }
      repeats: 2
    }
  )pb");
  v1::Job job = Parse<v1::Job>(R"pb(
    spec {
      job_id: "study-00-aaaaaa"
      cell { dimension: "optimizer" value: "adamw" }
      cell { dimension: "seed" value: "2" }
    }
  )pb");
  EXPECT_THAT(CellDimensions(sweep), ::testing::ElementsAre("optimizer", "seed"));
  EXPECT_THAT(CellValues(sweep, job), ::testing::ElementsAre("adamw", "2"));
  Jobs jobs;
  *jobs.Add() = job;
  EXPECT_THAT(JobsTable(sweep, jobs).Render(),
              ::testing::StartsWith("JOB              optimizer  seed  STATE"));
}

// A trial names no seed among its cell values (they are its cell's, shared by every repeat);
// the seed it trains on, the cell's first, is its config's.
TEST(ViewsTest, ATrialShowsTheSeedItTrainsOn) {
  v1::Sweep sweep = Parse<v1::Sweep>(R"pb(
    id: "tuned-00"
    spec {
      name: "tuned"
      grid {
        name: "optimizer"
        values: [ "adamw" ]
      }
      repeats: 3
      tuning { min_steps: 10 }
    }
  )pb");
  v1::Job trial = Parse<v1::Job>(R"pb(
    spec {
      job_id: "tuned-00-aaaaaa"
      cell { dimension: "optimizer" value: "adamw" }
      config { seed: 1 learning_rate: 0.003 }
      trial { rung: 1 }
    }
  )pb");
  EXPECT_THAT(CellDimensions(sweep), ::testing::ElementsAre("optimizer", "seed", "tuning"));
  EXPECT_THAT(CellValues(sweep, trial),
              ::testing::ElementsAre("adamw", "1", "rung 1: lr 0.003 wd 0"));
  Jobs jobs;
  *jobs.Add() = trial;
  EXPECT_THAT(JobsTable(sweep, jobs).Render(),
              ::testing::ContainsRegex("aaaaaa +adamw +1 +rung 1: lr 0.003 wd 0 "));
}

TEST(ViewsTest, SummaryLeavesOutEmptyStates) {
  EXPECT_EQ(CountsSummary(TwoDimensionSweep().counts()), "2 jobs: 1 failed, 1 running");
  EXPECT_EQ(CountsSummary(Parse<v1::JobCounts>("total: 1 succeeded: 1")), "1 job: 1 succeeded");
}

TEST(ViewsTest, TrialsAreCountedApartWithTheirFailures) {
  CountNotes trials;
  EXPECT_EQ(trials.Summary(), "");
  trials.Add(Parse<v1::Job>("spec { trial { rung: 0 } } state: JOB_STATE_FAILED"));
  trials.Add(Parse<v1::Job>("spec { trial { rung: 0 } } state: JOB_STATE_SUCCEEDED"));
  trials.Add(Parse<v1::Job>("spec { trial { rung: 1 } } state: JOB_STATE_CANCELLED"));
  trials.Add(Parse<v1::Job>("spec { trial { rung: 1 } } state: JOB_STATE_FAILED dropped: true"));
  trials.Add(Parse<v1::Job>("spec { tuned { point: 1 } } state: JOB_STATE_FAILED"));
  EXPECT_EQ(trials.Summary(),
            "of which 3 trials: 1 failed (ranked last, never chosen), 1 cancelled (their cells' "
            "tuning waits for `ablate retry --cancelled`)\n");
  CountNotes fine;
  fine.Add(Parse<v1::Job>("spec { trial { rung: 0 } } state: JOB_STATE_SUCCEEDED"));
  EXPECT_EQ(fine.Summary(), "of which 1 trial\n");
}

// Jobs an update dropped are in none of the counts by state; the summary says how many they
// are, and how many still hold a worker.
TEST(ViewsTest, DroppedJobsAreCountedApart) {
  EXPECT_EQ(CountsSummary(Parse<v1::JobCounts>("total: 1 succeeded: 1 dropped: 2")),
            "1 job: 1 succeeded; 2 more dropped by an update (out of the file, kept as they are, "
            "not counted; `retry` runs a failed or cancelled one named)");
  EXPECT_THAT(CountsSummary(Parse<v1::JobCounts>("total: 1 succeeded: 1 dropped: 2 "
                                                 "dropped_live: 1")),
              ::testing::EndsWith("cancelled one named), 1 of them not ended"));
}

TEST(ViewsTest, SweepsTableShowsProgressAndCreationTime) {
  v1::ListSweepsResponse response;
  *response.add_sweeps() = TwoDimensionSweep();
  const std::string text = SweepsTable(response, absl::UTCTimeZone()).Render();
  EXPECT_THAT(text, HasSubstr("SWEEP          NAME  STATE   DONE  CREATED\n"));
  EXPECT_THAT(text, HasSubstr("grid-0123abcd  grid  ACTIVE   1/2  2023-11-14 22:13:20 UTC\n"));
  response.mutable_sweeps(0)->mutable_counts()->set_dropped(3);
  EXPECT_THAT(SweepsTable(response, absl::UTCTimeZone()).Render(),
              HasSubstr("  ACTIVE  1/2 +3 dropped  "));
  response.mutable_sweeps(0)->mutable_counts()->set_dropped_live(1);
  EXPECT_THAT(SweepsTable(response, absl::UTCTimeZone()).Render(),
              HasSubstr("  ACTIVE  1/2 +3 dropped, 1 not ended  "));
}

TEST(ViewsTest, StatusJsonIsOneSweepSnapshotOnOneLine) {
  std::ostringstream out;
  StatusJsonWriter writer(out);
  ASSERT_TRUE(writer.Begin(TwoDimensionSweep()).ok());
  for (const v1::Job& job : TwoJobs()) ASSERT_TRUE(writer.Add(job).ok());
  writer.End();
  const std::string json = out.str();
  EXPECT_EQ(json.find('\n'), json.size() - 1);
  EXPECT_THAT(json, HasSubstr(R"("state":"JOB_STATE_RUNNING")"));
  EXPECT_THAT(json, HasSubstr(R"("step":"40")"));
  EXPECT_THAT(json, HasSubstr(R"("lastLoss":2.31)"));
  v1::SweepSnapshot parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) << json;
  EXPECT_EQ(parsed.sweep().id(), "grid-0123abcd");
  ASSERT_EQ(parsed.jobs_size(), 2);
  EXPECT_EQ(parsed.jobs(1).message(), "trainer exited with code 1");
}

TEST(ViewsTest, StatusJsonOfNoJobsIsAnEmptyList) {
  std::ostringstream out;
  StatusJsonWriter writer(out);
  ASSERT_TRUE(writer.Begin(TwoDimensionSweep()).ok());
  writer.End();
  v1::SweepSnapshot parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out.str(), &parsed).ok()) << out.str();
  EXPECT_EQ(parsed.jobs_size(), 0);
}

}  // namespace
}  // namespace ablate::cli
