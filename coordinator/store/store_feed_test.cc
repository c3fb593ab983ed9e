// The store publishing its commits to a change feed: deltas a watcher can apply to a snapshot,
// and the scheduler's wake-up when a job becomes PENDING.
#include <atomic>
#include <string>
#include <vector>

#include "coordinator/feed/change_feed.h"
#include "coordinator/store/store.h"
#include "coordinator/testing/fixtures.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using testing::MakeJobs;
using testing::MakeSweep;
using testing::Point;
using Result = ChangeFeed::Subscription::Result;

class StoreFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    feed_.AddPendingListener([this] { ++pending_; });
    StoreOptions options;
    options.feed = &feed_;
    store_ = Store::Open(dir_.File("ablate.db"), clock_, options).value();
  }

  ChangeFeed::Delta NextDelta(ChangeFeed::Subscription& sub) {
    ChangeFeed::Delta delta;
    EXPECT_EQ(sub.Next(&delta, absl::Seconds(30)), Result::kDelta);
    return delta;
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  ChangeFeed feed_{clock_};
  std::atomic<int> pending_ = 0;
  std::unique_ptr<Store> store_;  // after the feed: stops writing before it goes
};

TEST_F(StoreFeedTest, ACommitIsPublishedAsADeltaOnTopOfTheSnapshot) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 3), 3).ok());
  EXPECT_EQ(pending_, 1);  // a new sweep's jobs are PENDING

  auto sub = feed_.Subscribe("s");
  v1::SweepSnapshot snapshot = store_->Snapshot("s", JobQuery{}).value();
  sub->SkipThrough(snapshot.version());
  EXPECT_EQ(snapshot.version(), feed_.version());

  const uint64_t attempt = store_->StartAttempt("s-j1", "w1").value().id();
  ChangeFeed::Delta started = NextDelta(*sub);
  EXPECT_TRUE(started->delta());
  EXPECT_EQ(started->version(), store_->Version());
  ASSERT_EQ(started->jobs_size(), 1);
  EXPECT_EQ(started->jobs(0).spec().job_id(), "s-j1");
  EXPECT_EQ(started->jobs(0).state(), v1::JOB_STATE_ASSIGNED);
  EXPECT_EQ(started->sweep().counts().assigned(), 1u);
  EXPECT_EQ(started->sweep().counts().pending(), 2u);

  ASSERT_TRUE(store_
                  ->AppendMetrics("s-j1", attempt,
                                  {Point("train/loss", 10, 3.5), Point("train/lr", 10, 1e-3)})
                  .ok());
  ChangeFeed::Delta metrics = NextDelta(*sub);
  ASSERT_EQ(metrics->jobs_size(), 1);
  EXPECT_EQ(metrics->jobs(0).step(), 10);
  EXPECT_EQ(metrics->jobs(0).last_loss(), 3.5);
  ASSERT_EQ(metrics->metrics_size(), 1);
  EXPECT_EQ(metrics->metrics(0).job_id(), "s-j1");
  ASSERT_EQ(metrics->metrics(0).points_size(), 2);
  EXPECT_EQ(metrics->metrics(0).points(1).name(), "train/lr");

  // A refused report publishes nothing.
  EXPECT_FALSE(store_->AppendMetrics("s-j1", attempt + 7, {Point("train/loss", 11, 1.0)}).ok());
  ChangeFeed::Delta none;
  EXPECT_EQ(sub->Next(&none, absl::Milliseconds(50)), Result::kTimeout);

  // The attempt is lost: the job is PENDING again, the scheduler is woken.
  ASSERT_TRUE(store_
                  ->EndAttempt("s-j1", attempt, v1::ATTEMPT_STATE_LOST, {}, v1::JOB_STATE_PENDING,
                               "worker lost", std::nullopt)
                  .ok());
  EXPECT_EQ(pending_, 2);
  ChangeFeed::Delta requeued = NextDelta(*sub);
  EXPECT_EQ(requeued->jobs(0).state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(requeued->sweep().counts().pending(), 3u);
}

TEST_F(StoreFeedTest, AnUnwatchedSweepCostsNoDeltaAndCannotBeResumed) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 1), 3).ok());
  const int64_t before = store_->Version();
  ASSERT_TRUE(store_->StartAttempt("s-j0", "w1").ok());
  EXPECT_EQ(feed_.Resume("s", before).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(feed_.Resume("s", store_->Version()).ok());
}

TEST_F(StoreFeedTest, CancellingMoreJobsThanADeltaHoldsMakesWatchersTakeASnapshot) {
  const int n = static_cast<int>(feed_.options().max_delta_jobs) + 1;
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", n), 3).ok());
  auto sub = feed_.Subscribe("s");
  std::vector<std::string> ids;
  ids.reserve(n);
  for (int i = 0; i < n; ++i) ids.push_back("s-j" + std::to_string(i));
  ASSERT_TRUE(store_->CancelJobs(ids, "cancelled by user").ok());
  ChangeFeed::Delta delta;
  EXPECT_EQ(sub->Next(&delta, absl::Seconds(30)), Result::kFellBehind);
}

}  // namespace
}  // namespace ablate::coordinator
