#include "coordinator/feed/change_feed.h"

#include <atomic>
#include <thread>

#include "coordinator/testing/fixtures.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using Result = ChangeFeed::Subscription::Result;

// A commit changing one job of `sweep_id` (its step set to `version`) with one metric point.
Commit CommitOf(int64_t version, const std::string& sweep_id) {
  Commit commit;
  commit.version = version;
  commit.touched.insert(sweep_id);
  v1::SweepSnapshot& delta = commit.deltas[sweep_id];
  delta.mutable_sweep()->set_id(sweep_id);
  v1::Job& job = *delta.add_jobs();
  job.mutable_spec()->set_job_id(sweep_id + "-job");
  job.set_step(version);
  v1::JobMetrics& metrics = *delta.add_metrics();
  metrics.set_job_id(job.spec().job_id());
  *metrics.add_points() = testing::Point("train/loss", version, 1.0 / static_cast<double>(version));
  return commit;
}

class ChangeFeedTest : public ::testing::Test {
 protected:
  testing::FakeClock clock_;
};

TEST_F(ChangeFeedTest, SubscriberGetsDeltasOfItsSweepInVersionOrder) {
  ChangeFeed feed(clock_);
  auto sub = feed.Subscribe("a");
  EXPECT_TRUE(feed.Wants("a"));
  EXPECT_FALSE(feed.Wants("b"));
  feed.Publish(CommitOf(1, "a"));
  feed.Publish(CommitOf(2, "b"));
  feed.Publish(CommitOf(3, "a"));
  ChangeFeed::Delta delta;
  ASSERT_EQ(sub->Next(&delta, absl::ZeroDuration()), Result::kDelta);
  EXPECT_EQ(delta->version(), 1);
  EXPECT_TRUE(delta->delta());
  EXPECT_EQ(delta->jobs(0).step(), 1);
  ASSERT_EQ(sub->Next(&delta, absl::ZeroDuration()), Result::kDelta);
  EXPECT_EQ(delta->version(), 3);
  EXPECT_EQ(delta->metrics(0).points(0).step(), 3);
  EXPECT_EQ(sub->Next(&delta, absl::ZeroDuration()), Result::kTimeout);
}

TEST_F(ChangeFeedTest, SkipThroughDropsWhatASnapshotAlreadyHolds) {
  ChangeFeed feed(clock_);
  auto sub = feed.Subscribe("a");
  feed.Publish(CommitOf(1, "a"));
  feed.Publish(CommitOf(2, "a"));
  sub->SkipThrough(2);  // the snapshot read after Subscribe saw version 2
  feed.Publish(CommitOf(2, "a"));
  feed.Publish(CommitOf(3, "a"));
  ChangeFeed::Delta delta;
  ASSERT_EQ(sub->Next(&delta, absl::ZeroDuration()), Result::kDelta);
  EXPECT_EQ(delta->version(), 3);
  EXPECT_EQ(sub->Next(&delta, absl::ZeroDuration()), Result::kTimeout);
}

TEST_F(ChangeFeedTest, ResumeReplaysEveryDeltaAfterTheVersion) {
  ChangeFeed feed(clock_);
  auto watcher = feed.Subscribe("a");  // keeps deltas of "a" built and kept
  for (int64_t v = 1; v <= 5; ++v) feed.Publish(CommitOf(v, "a"));
  absl::StatusOr<std::unique_ptr<ChangeFeed::Subscription>> resumed = feed.Resume("a", 3);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ChangeFeed::Delta delta;
  ASSERT_EQ((*resumed)->Next(&delta, absl::ZeroDuration()), Result::kDelta);
  EXPECT_EQ(delta->version(), 4);
  ASSERT_EQ((*resumed)->Next(&delta, absl::ZeroDuration()), Result::kDelta);
  EXPECT_EQ(delta->version(), 5);
  feed.Publish(CommitOf(6, "a"));
  ASSERT_EQ((*resumed)->Next(&delta, absl::ZeroDuration()), Result::kDelta);
  EXPECT_EQ(delta->version(), 6);
}

TEST_F(ChangeFeedTest, ResumeRefusesAVersionTheBufferNoLongerCovers) {
  ChangeFeedOptions options;
  options.replay_commits = 2;
  ChangeFeed feed(clock_, options);
  feed.StartAt(10);
  auto watcher = feed.Subscribe("a");
  for (int64_t v = 11; v <= 14; ++v) feed.Publish(CommitOf(v, "a"));
  EXPECT_EQ(feed.Resume("a", 11).status().code(), absl::StatusCode::kOutOfRange);  // evicted
  EXPECT_TRUE(feed.Resume("a", 12).ok());
  EXPECT_EQ(feed.Resume("a", 15).status().code(), absl::StatusCode::kOutOfRange);  // future
  EXPECT_EQ(feed.Resume("a", 5).status().code(), absl::StatusCode::kOutOfRange);   // restart
}

TEST_F(ChangeFeedTest, AChangeWithoutADeltaBreaksTheSweepsHistory) {
  ChangeFeed feed(clock_);
  auto sub = feed.Subscribe("a");
  feed.Publish(CommitOf(1, "a"));
  Commit too_large;  // touched, but sent without a delta
  too_large.version = 2;
  too_large.touched.insert("a");
  feed.Publish(std::move(too_large));
  ChangeFeed::Delta delta;
  EXPECT_EQ(sub->Next(&delta, absl::ZeroDuration()), Result::kFellBehind);
  EXPECT_EQ(sub->Next(&delta, absl::ZeroDuration()), Result::kTimeout);
  EXPECT_FALSE(feed.Resume("a", 1).ok());
  EXPECT_TRUE(feed.Resume("a", 2).ok());
}

TEST_F(ChangeFeedTest, ASlowSubscriberFallsBehindWithoutHoldingUpOthers) {
  ChangeFeedOptions options;
  options.subscriber_queue = 3;
  ChangeFeed feed(clock_, options);
  auto slow = feed.Subscribe("a");
  auto fast = feed.Subscribe("a");
  ChangeFeed::Delta delta;
  for (int64_t v = 1; v <= 10; ++v) {
    feed.Publish(CommitOf(v, "a"));
    ASSERT_EQ(fast->Next(&delta, absl::ZeroDuration()), Result::kDelta);
    EXPECT_EQ(delta->version(), v);
  }
  EXPECT_EQ(slow->Next(&delta, absl::ZeroDuration()), Result::kFellBehind);
  slow->SkipThrough(10);  // took a snapshot at version 10
  feed.Publish(CommitOf(11, "a"));
  ASSERT_EQ(slow->Next(&delta, absl::ZeroDuration()), Result::kDelta);
  EXPECT_EQ(delta->version(), 11);
}

TEST_F(ChangeFeedTest, DeltasStayWantedForTheLingerAfterTheLastSubscriber) {
  ChangeFeed feed(clock_);
  { auto sub = feed.Subscribe("a"); }
  EXPECT_TRUE(feed.Wants("a"));
  clock_.Advance(absl::Minutes(2));
  EXPECT_FALSE(feed.Wants("a"));
}

TEST_F(ChangeFeedTest, NotifyAndPendingListenersRunOnPublish) {
  ChangeFeed feed(clock_);
  auto sub = feed.Subscribe("a");
  std::atomic<int> notified = 0;
  std::atomic<int> pending = 0;
  sub->SetNotify([&] { ++notified; });
  feed.AddPendingListener([&] { ++pending; });
  feed.Publish(CommitOf(1, "a"));
  EXPECT_EQ(notified, 1);
  EXPECT_EQ(pending, 0);
  Commit requeue;
  requeue.version = 2;
  requeue.job_became_pending = true;
  feed.Publish(std::move(requeue));
  EXPECT_EQ(pending, 1);
  EXPECT_EQ(notified, 1);  // nothing of "a" changed
}

TEST_F(ChangeFeedTest, NextWakesOnPublishFromAnotherThreadAndOnClose) {
  ChangeFeed feed(clock_);
  auto sub = feed.Subscribe("a");
  std::thread writer([&] { feed.Publish(CommitOf(1, "a")); });
  ChangeFeed::Delta delta;
  EXPECT_EQ(sub->Next(&delta, absl::Seconds(30)), Result::kDelta);
  writer.join();
  std::thread closer([&] { feed.Close(); });
  EXPECT_EQ(sub->Next(&delta, absl::Seconds(30)), Result::kClosed);
  closer.join();
}

}  // namespace
}  // namespace ablate::coordinator
