// RunOptions, what a caller adds to a job: the clock-based checkpoints of a job without
// checkpoint_every, progress events by the clock, and a profiled window of steps.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "common/remove_tree.h"
#include "trainer_lib/train/trainer.h"
#include "trainer_lib/train/trainer_test_support.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;
using trainer_test::FreshDir;
using trainer_test::MemorySink;
using trainer_test::SavedSteps;
using trainer_test::TinyJob;

// checkpoint_every 0 saves by the clock, so a crash costs at most autosave_interval of the run:
// every step here takes longer than the interval, so each one saves; a zero interval saves
// only the final step.
TEST(TrainerTest, WithoutCheckpointEveryARunSavesByTheClock) {
  const fs::path dir = FreshDir("autosave");
  RunOptions options;
  options.autosave_interval = absl::Nanoseconds(1);
  MemorySink sink;
  StopRequest stop{0};
  ASSERT_TRUE(train::Run(TinyJob(6, dir.string()), sink, stop, options).ok());
  // Step 0 is not saved (nothing trained), the last once (the final save sees it saved).
  EXPECT_EQ(SavedSteps(sink), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  RemoveTree(dir);

  options.autosave_interval = absl::ZeroDuration();
  MemorySink final_only;
  ASSERT_TRUE(train::Run(TinyJob(6, dir.string()), final_only, stop, options).ok());
  EXPECT_EQ(SavedSteps(final_only), (std::vector<int64_t>{6}));
  RemoveTree(dir);
}

// Progress by the clock, whatever log_every is, so that a worker can tell a slow trainer from a
// hung one: with progress_every 0 one at each step and each evaluation batch; with the default
// minute none in a run of a second, where the metrics say enough.
TEST(TrainerTest, ProgressEventsComeByTheClock) {
  auto progress_steps = [](const MemorySink& sink) {
    std::vector<int64_t> steps;
    for (const v1::TrainerEvent& e : sink.events) {
      if (e.has_progress()) steps.push_back(e.progress().step());
    }
    return steps;
  };
  v1::JobSpec job = TinyJob(6);
  job.mutable_config()->set_log_every(100);
  StopRequest stop{0};
  RunOptions options;
  options.progress_every = absl::ZeroDuration();
  MemorySink every;
  ASSERT_TRUE(train::Run(job, every, stop, options).ok());
  // Before each of the 6 steps, then before each of the final evaluation's 2 batches.
  EXPECT_EQ(progress_steps(every), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 6}));

  MemorySink by_default;
  ASSERT_TRUE(train::Run(job, by_default, stop, RunOptions()).ok());
  EXPECT_TRUE(progress_steps(by_default).empty());
}

// The profiled window is the steps asked for: its summary is logged once, after them, and the
// files it names hold the operators a tiny model's step runs.
TEST(TrainerTest, ProfileRecordsTheStepsAskedForAndWritesItsTable) {
  const fs::path dir = FreshDir("profile");
  RunOptions options;
  options.profile = {dir, /*first_step=*/2, /*steps=*/2};
  MemorySink sink;
  std::vector<size_t> metrics_before_summary;
  sink.on_event = [&](const v1::TrainerEvent& e) {
    if (e.has_log() && absl::StartsWith(e.log().text(), "profile of steps 3..4:")) {
      metrics_before_summary.push_back(sink.Values("train/loss").size());
    }
  };
  StopRequest stop{0};
  v1::JobSpec job = TinyJob(6);
  job.mutable_config()->set_log_every(1);
  ASSERT_TRUE(train::Run(job, sink, stop, options).ok());
  // Logged once, as soon as step 4 ran: after step 3's metrics, before step 4's.
  ASSERT_EQ(metrics_before_summary, std::vector<size_t>{3});

  std::ifstream table(dir / "kernels.tsv");
  std::string header;
  std::getline(table, header);
  EXPECT_EQ(header, "kind\tname\tcalls\ttotal_ms\tms_per_step\tshare");
  bool saw_matmul = false;
  for (std::string line; std::getline(table, line);) {
    if (absl::StartsWith(line, "matmul\t")) saw_matmul = true;
  }
  EXPECT_TRUE(saw_matmul);
  EXPECT_GT(fs::file_size(dir / "trace.json"), 1000u);
  RemoveTree(dir);
}

}  // namespace
}  // namespace ablate::train
