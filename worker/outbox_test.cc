#include "worker/outbox.h"

#include "gtest/gtest.h"

namespace ablate::worker {
namespace {

v1::WorkerMessage Metric(int64_t step) {
  v1::WorkerMessage message;
  message.mutable_job_event()->mutable_event()->mutable_metrics()->add_points()->set_step(step);
  return message;
}

v1::WorkerMessage Started() {
  v1::WorkerMessage message;
  message.mutable_job_event()->mutable_event()->mutable_started();
  return message;
}

v1::WorkerMessage Ended(uint64_t attempt_id) {
  v1::WorkerMessage message;
  message.mutable_attempt_ended()->set_attempt_id(attempt_id);
  return message;
}

TEST(OutboxTest, KeepsOrder) {
  Outbox outbox(10);
  outbox.Push(Started());
  outbox.Push(Metric(1));
  outbox.Push(Ended(3));
  EXPECT_TRUE(outbox.Pop()->job_event().event().has_started());
  EXPECT_EQ(outbox.Pop()->job_event().event().metrics().points(0).step(), 1);
  EXPECT_EQ(outbox.Pop()->attempt_ended().attempt_id(), 3u);
  EXPECT_FALSE(outbox.Pop().has_value());
  EXPECT_EQ(outbox.dropped(), 0u);
}

TEST(OutboxTest, WhenFullDropsTheOldestMetricsFirst) {
  Outbox outbox(3);
  outbox.Push(Started());
  outbox.Push(Metric(1));
  outbox.Push(Metric(2));
  outbox.Push(Metric(3));  // drops step 1
  outbox.Push(Ended(1));   // drops step 2
  EXPECT_EQ(outbox.size(), 3u);
  EXPECT_EQ(outbox.dropped(), 2u);
  EXPECT_TRUE(outbox.Pop()->job_event().event().has_started());
  EXPECT_EQ(outbox.Pop()->job_event().event().metrics().points(0).step(), 3);
  EXPECT_EQ(outbox.Pop()->attempt_ended().attempt_id(), 1u);
}

TEST(OutboxTest, NeverDropsLifecycleMessages) {
  Outbox outbox(2);
  outbox.Push(Ended(1));
  outbox.Push(Ended(2));
  outbox.Push(Metric(1));  // nothing older may go, so the new metric does
  outbox.Push(Ended(3));   // kept past the capacity
  EXPECT_EQ(outbox.size(), 3u);
  EXPECT_EQ(outbox.dropped(), 1u);
  for (uint64_t id = 1; id <= 3; ++id) EXPECT_EQ(outbox.Pop()->attempt_ended().attempt_id(), id);
}

TEST(OutboxTest, PushFrontRestoresTheHead) {
  Outbox outbox(1);
  outbox.Push(Metric(1));
  std::optional<v1::WorkerMessage> head = outbox.Pop();
  outbox.Push(Metric(2));
  outbox.PushFront(*std::move(head));
  EXPECT_EQ(outbox.Pop()->job_event().event().metrics().points(0).step(), 1);
  EXPECT_EQ(outbox.Pop()->job_event().event().metrics().points(0).step(), 2);
}

}  // namespace
}  // namespace ablate::worker
