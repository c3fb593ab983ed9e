#include "coordinator/scheduler/pending_queue.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using ::testing::ElementsAre;

v1::JobSpec Spec(const std::string& sweep_id, uint32_t index, uint32_t gpus = 0,
                 int32_t priority = 0) {
  v1::JobSpec spec;
  spec.set_sweep_id(sweep_id);
  spec.set_job_id(absl::StrCat(sweep_id, "-", index));
  spec.set_index(index);
  spec.set_priority(priority);
  spec.mutable_config()->set_gpus(gpus);
  return spec;
}

// Places everything `fits` accepts, up to `limit`; returns the job ids in the order offered
// and placed.
std::vector<std::string> PlaceAll(PendingQueue& queue, int limit,
                                  const std::function<bool(const SlotNeed&)>& fits) {
  std::vector<std::string> placed;
  queue.Place(
      [&](const v1::JobSpec& spec, const SlotNeed& need) {
        if (!fits(need)) return false;
        placed.push_back(spec.job_id());
        return true;
      },
      limit);
  return placed;
}

bool Anything(const SlotNeed&) { return true; }

TEST(PendingQueueTest, SweepsTakeTurnsByFewestPlaced) {
  PendingQueue queue;
  for (uint32_t i = 0; i < 3; ++i) queue.Add(Spec("a", i));
  for (uint32_t i = 0; i < 3; ++i) queue.Add(Spec("b", i));
  queue.Add(Spec("c", 0));
  EXPECT_THAT(PlaceAll(queue, 100, Anything),
              ElementsAre("a-0", "b-0", "c-0", "a-1", "b-1", "a-2", "b-2"));
  EXPECT_EQ(queue.size(), 0u);
}

TEST(PendingQueueTest, PlacedJobsCountAgainstTheirSweepUntilUnplaced) {
  PendingQueue queue;
  queue.CountPlaced(Spec("a", 9));
  queue.CountPlaced(Spec("a", 8));
  queue.Add(Spec("a", 0));
  queue.Add(Spec("b", 0));
  EXPECT_THAT(PlaceAll(queue, 1, Anything), ElementsAre("b-0"));
  queue.CountUnplaced("a");
  queue.CountUnplaced("a");
  queue.Add(Spec("c", 0));
  // a holds nothing now and is the older sweep.
  EXPECT_THAT(PlaceAll(queue, 1, Anything), ElementsAre("a-0"));
}

TEST(PendingQueueTest, HigherPriorityFirstButAJobThatFitsIsNeverStarved) {
  PendingQueue queue;
  queue.Add(Spec("low", 0));
  queue.Add(Spec("high", 0, /*gpus=*/1, /*priority=*/3));
  queue.Add(Spec("high", 1, 0, 3));
  // No CUDA slot is free: high-0 is skipped, high-1 and then low-0 are placed.
  EXPECT_THAT(PlaceAll(queue, 100, [](const SlotNeed& n) { return n.kind == v1::DEVICE_KIND_CPU; }),
              ElementsAre("high-1", "low-0"));
  EXPECT_TRUE(queue.Contains("high-0"));
}

TEST(PendingQueueTest, ARequeuedJobKeepsItsPlaceAndRemovedOnesLeave) {
  PendingQueue queue;
  for (uint32_t i = 1; i < 4; ++i) queue.Add(Spec("s", i));
  queue.Add(Spec("s", 0));
  queue.Add(Spec("s", 0));  // twice is once
  EXPECT_TRUE(queue.Remove("s-2"));
  EXPECT_FALSE(queue.Remove("s-2"));
  EXPECT_EQ(queue.size(), 3u);
  EXPECT_THAT(PlaceAll(queue, 100, Anything), ElementsAre("s-0", "s-1", "s-3"));
}

TEST(PendingQueueTest, GroupsRememberTheirMessageAndNewcomersMakeItStale) {
  PendingQueue queue;
  queue.Add(Spec("s", 0, 1));
  queue.ForEachGroup([](const std::string&, const SlotNeed& need, PendingQueue::Group& group) {
    EXPECT_EQ(need.kind, v1::DEVICE_KIND_CUDA);
    group.message = "waiting";
  });
  queue.Add(Spec("s", 1, 1));
  int groups = 0;
  queue.ForEachGroup([&](const std::string& sweep_id, const SlotNeed&, PendingQueue::Group& group) {
    ++groups;
    EXPECT_EQ(sweep_id, "s");
    EXPECT_EQ(group.jobs.size(), 2u);
    EXPECT_TRUE(group.message_stale);
  });
  EXPECT_EQ(groups, 1);
}

// `spec` checkpointing in <checkpoint_root>/<sweep id>/<job id> and reading `dataset`.
v1::JobSpec Under(v1::JobSpec spec, const std::string& checkpoint_root,
                  const std::string& dataset) {
  spec.set_checkpoint_dir(absl::StrCat(checkpoint_root, "/", spec.sweep_id(), "/", spec.job_id()));
  spec.mutable_config()->set_dataset(dataset);
  return spec;
}

// A job that no worker's roots hold is skipped with the jobs of its sweep that read the same
// dataset, not with those that read another, nor with another sweep's.
TEST(PendingQueueTest, JobsOfOneNeedAreSkippedApartByTheirPaths) {
  PendingQueue queue;
  queue.Add(Under(Spec("a", 0), "/far", "/data/set"));
  queue.Add(Under(Spec("a", 1), "/far", "/data/set"));
  queue.Add(Under(Spec("b", 0), "/ckpt", "/other/set"));
  queue.Add(Under(Spec("b", 1), "/ckpt", "/data/set"));
  queue.Add(Under(Spec("b", 2), "/ckpt", "/other/set"));
  std::vector<std::string> offered;
  std::vector<std::string> placed;
  queue.Place(
      [&](const v1::JobSpec& spec, const SlotNeed&) {
        offered.push_back(spec.job_id());
        const bool held = absl::StartsWith(spec.checkpoint_dir(), "/ckpt/") &&
                          spec.config().dataset() == "/data/set";
        if (held) placed.push_back(spec.job_id());
        return held;
      },
      100);
  EXPECT_THAT(offered, ElementsAre("a-0", "b-0", "b-1"));
  EXPECT_THAT(placed, ElementsAre("b-1"));
  int groups = 0;
  queue.ForEachGroup([&](const std::string&, const SlotNeed&, PendingQueue::Group&) { ++groups; });
  EXPECT_EQ(groups, 2);  // a's jobs share their folder and dataset; b-0 and b-2 theirs
}

// `jobs` staged and taken, ready to splice.
PendingQueue::Staged Stage(std::vector<v1::JobSpec> jobs) {
  PendingQueue::Staged staged(jobs);
  staged.Take(std::move(jobs));
  return staged;
}

// Spliced jobs are queued as Add queues them, and not before.
TEST(PendingQueueTest, StagedJobsJoinOnlyWhenSpliced) {
  PendingQueue queue;
  queue.Add(Spec("a", 0));
  PendingQueue::Staged staged = Stage({Spec("b", 0), Spec("b", 1, 1), Spec("b", 2), Spec("c", 0)});
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_FALSE(queue.Contains("b-0"));
  queue.Splice(std::move(staged));
  EXPECT_EQ(queue.size(), 5u);
  EXPECT_TRUE(queue.Contains("b-1"));
  // b was first seen before c, so it is the older sweep: a, b, c take turns, then b's rest.
  EXPECT_THAT(PlaceAll(queue, 100, Anything), ElementsAre("a-0", "b-0", "c-0", "b-1", "b-2"));
  EXPECT_EQ(queue.size(), 0u);
}

TEST(PendingQueueTest, ADroppedStageQueuesNothing) {
  PendingQueue queue;
  { PendingQueue::Staged staged({Spec("b", 0), Spec("b", 1)}); }
  EXPECT_EQ(queue.size(), 0u);
  EXPECT_THAT(PlaceAll(queue, 100, Anything), ElementsAre());
}

TEST(PendingQueueTest, SplicingKeepsQueuedJobsAndJoinsTheirGroups) {
  PendingQueue queue;
  v1::JobSpec queued = Spec("s", 1, 1);
  queued.mutable_config()->set_steps(7);
  queue.Add(queued);
  queue.ForEachGroup([](const std::string&, const SlotNeed&, PendingQueue::Group& group) {
    group.message = "waiting";
  });
  queue.Splice(Stage({Spec("s", 0, 1), Spec("s", 1, 1), Spec("s", 2, 1)}));
  EXPECT_EQ(queue.size(), 3u);
  queue.ForEachGroup([](const std::string&, const SlotNeed&, PendingQueue::Group& group) {
    EXPECT_EQ(group.jobs.size(), 3u);
    EXPECT_EQ(group.jobs.at(1).config().steps(), 7u);  // the job queued first stays
    EXPECT_TRUE(group.message_stale);
  });
  EXPECT_THAT(PlaceAll(queue, 100, Anything), ElementsAre("s-0", "s-1", "s-2"));
}

}  // namespace
}  // namespace ablate::coordinator
