#include "cli/live_sweep.h"

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace ablate::cli {
namespace {

v1::SweepSnapshot Parse(const char* text) {
  v1::SweepSnapshot message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

const v1::SweepSnapshot kWhole = Parse(R"pb(
  sweep {
    id: "s"
    spec { name: "grid" }
    state: SWEEP_STATE_ACTIVE
    counts { total: 2 pending: 2 }
  }
  jobs {
    spec { job_id: "s-a" }
    state: JOB_STATE_PENDING
  }
  jobs {
    spec { job_id: "s-b" }
    state: JOB_STATE_PENDING
  }
  version: 7
)pb");

TEST(LiveSweepTest, DeltaReplacesChangedJobsAndCounts) {
  LiveSweep live;
  live.Apply(kWhole);
  live.Apply(Parse(R"pb(
    delta: true
    version: 9
    sweep {
      id: "s"
      state: SWEEP_STATE_ACTIVE
      counts { total: 2 pending: 1 running: 1 }
    }
    jobs {
      spec { job_id: "s-b" }
      state: JOB_STATE_RUNNING
      step: 40
    }
    metrics {
      job_id: "s-b"
      points { name: "train/loss" step: 40 value: 2.5 }
    }
  )pb"));
  const v1::SweepSnapshot& now = live.snapshot();
  EXPECT_EQ(now.version(), 9);
  EXPECT_EQ(now.sweep().spec().name(), "grid");  // kept from the whole sweep
  EXPECT_EQ(now.sweep().counts().running(), 1u);
  EXPECT_EQ(now.sweep().counts().pending(), 1u);
  ASSERT_EQ(now.jobs_size(), 2);
  EXPECT_EQ(now.jobs(0).state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(now.jobs(1).state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(now.jobs(1).step(), 40u);
  EXPECT_EQ(now.metrics_size(), 0);
}

TEST(LiveSweepTest, ACountThatDropsToZeroIsZero) {
  LiveSweep live;
  live.Apply(kWhole);
  live.Apply(Parse(R"pb(
    delta: true
    sweep {
      id: "s"
      state: SWEEP_STATE_CANCELLED
      counts { total: 2 cancelled: 2 }
    }
  )pb"));
  EXPECT_EQ(live.snapshot().sweep().counts().pending(), 0u);
  EXPECT_EQ(live.snapshot().sweep().state(), v1::SWEEP_STATE_CANCELLED);
}

TEST(LiveSweepTest, AWholeSweepAgainReplacesEverything) {
  LiveSweep live;
  live.Apply(kWhole);
  v1::SweepSnapshot again = kWhole;
  again.mutable_jobs()->RemoveLast();
  again.mutable_jobs(0)->set_state(v1::JOB_STATE_SUCCEEDED);
  live.Apply(again);
  ASSERT_EQ(live.snapshot().jobs_size(), 1);
  EXPECT_EQ(live.snapshot().jobs(0).state(), v1::JOB_STATE_SUCCEEDED);
}

TEST(LiveSweepTest, DeltaBeforeTheWholeSweepIsIgnored) {
  LiveSweep live;
  live.Apply(Parse(R"pb(delta: true
                        jobs { spec { job_id: "s-a" } })pb"));
  EXPECT_FALSE(live.known());
  EXPECT_EQ(live.snapshot().jobs_size(), 0);
}

}  // namespace
}  // namespace ablate::cli
