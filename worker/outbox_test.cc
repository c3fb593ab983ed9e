#include "worker/outbox.h"

#include <unistd.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

using Report = std::pair<uint64_t, uint64_t>;  // attempt id, sequence

v1::WorkerMessage Metric(uint64_t attempt_id, int64_t step) {
  v1::WorkerMessage message;
  message.mutable_job_event()->set_attempt_id(attempt_id);
  message.mutable_job_event()->mutable_event()->mutable_metrics()->add_points()->set_step(step);
  return message;
}

v1::WorkerMessage Started(uint64_t attempt_id) {
  v1::WorkerMessage message;
  message.mutable_job_event()->set_attempt_id(attempt_id);
  message.mutable_job_event()->mutable_event()->mutable_started();
  return message;
}

v1::WorkerMessage Ended(uint64_t attempt_id) {
  v1::WorkerMessage message;
  message.mutable_attempt_ended()->set_attempt_id(attempt_id);
  return message;
}

Report Key(const v1::WorkerMessage& m) {
  return m.has_job_event() ? Report{m.job_event().attempt_id(), m.job_event().sequence()}
                           : Report{m.attempt_ended().attempt_id(), m.attempt_ended().sequence()};
}

// Everything the outbox has left to send, in order.
std::vector<Report> SendAll(Outbox& outbox) {
  std::vector<Report> sent;
  while (std::optional<v1::WorkerMessage> m = outbox.NextToSend()) sent.push_back(Key(*m));
  EXPECT_FALSE(outbox.HasUnsent());
  return sent;
}

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override { std::filesystem::create_directories(dir_); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static inline int counter_ = 0;
  const std::filesystem::path dir_ = std::filesystem::path(::testing::TempDir()) /
                                     absl::StrCat("outbox_test-", getpid(), "-", counter_++);
  const std::filesystem::path spill_ = dir_ / "outbox.spill";
};

TEST_F(OutboxTest, NumbersEachAttemptsReportsInTheOrderPushed) {
  Outbox outbox(10, spill_);
  outbox.Push(Started(1));
  outbox.Push(Started(2));
  outbox.Push(Metric(1, 1));
  outbox.Push(Ended(2));
  outbox.Push(Ended(1));
  EXPECT_THAT(SendAll(outbox),
              ElementsAre(Pair(1, 1), Pair(2, 1), Pair(1, 2), Pair(2, 2), Pair(1, 3)));
  EXPECT_EQ(outbox.unacked(), 5u);  // sent is not acknowledged
  EXPECT_EQ(outbox.spilled(), 0u);
  EXPECT_FALSE(std::filesystem::exists(spill_));
}

TEST_F(OutboxTest, KeepsWhatIsNotAckedAndSendsItAgainAfterRewind) {
  Outbox outbox(10, spill_);
  outbox.Push(Started(1));
  for (int step = 1; step <= 3; ++step) outbox.Push(Metric(1, step));
  outbox.Push(Ended(1));
  outbox.Push(Started(2));
  ASSERT_EQ(SendAll(outbox).size(), 6u);
  EXPECT_FALSE(outbox.Ack(1, 2));
  EXPECT_FALSE(outbox.Ack(1, 1));  // acks only grow: nothing comes back
  outbox.Rewind();
  EXPECT_THAT(SendAll(outbox), ElementsAre(Pair(1, 3), Pair(1, 4), Pair(1, 5), Pair(2, 1)));
  EXPECT_TRUE(outbox.Ack(1, 5));   // the attempt's end is committed
  EXPECT_FALSE(outbox.Ack(7, 3));  // an unknown attempt
  EXPECT_EQ(outbox.unacked(), 1u);
  outbox.Rewind();
  EXPECT_THAT(SendAll(outbox), ElementsAre(Pair(2, 1)));
}

TEST_F(OutboxTest, AckBetweenSendsKeepsTheSendPosition) {
  Outbox outbox(10, spill_);
  for (int step = 1; step <= 4; ++step) outbox.Push(Metric(1, step));
  ASSERT_TRUE(outbox.NextToSend().has_value());
  ASSERT_TRUE(outbox.NextToSend().has_value());
  outbox.Ack(1, 1);
  EXPECT_THAT(SendAll(outbox), ElementsAre(Pair(1, 3), Pair(1, 4)));
}

TEST_F(OutboxTest, SpillsPastTheBoundAndLosesNothing) {
  Outbox outbox(4, spill_);
  std::vector<Report> pushed;
  for (int step = 1; step <= 50; ++step) {
    outbox.Push(Metric(step % 2 == 0 ? 2 : 1, step));
    pushed.push_back({step % 2 == 0 ? 2u : 1u, static_cast<uint64_t>((step + 1) / 2)});
  }
  outbox.Push(Ended(1));
  pushed.push_back({1, 26});
  EXPECT_EQ(outbox.spilled(), 47u);
  EXPECT_EQ(outbox.unacked(), 51u);
  EXPECT_GT(std::filesystem::file_size(spill_), 0u);

  // Sent from memory, then straight from the file.
  EXPECT_EQ(SendAll(outbox), pushed);
  // A reconnect before any ack: the same again, in the same order.
  outbox.Rewind();
  EXPECT_EQ(SendAll(outbox), pushed);

  // Acks drain memory, which refills from the file; a rewind then resends the rest once.
  outbox.Ack(1, 10);
  outbox.Ack(2, 5);
  outbox.Rewind();
  std::vector<Report> rest;
  for (const Report& r : pushed) {
    if ((r.first == 1 && r.second > 10) || (r.first == 2 && r.second > 5)) rest.push_back(r);
  }
  EXPECT_EQ(SendAll(outbox), rest);
  EXPECT_EQ(outbox.unacked(), rest.size());

  EXPECT_TRUE(outbox.Ack(1, 26));
  EXPECT_FALSE(outbox.Ack(2, 25));
  EXPECT_EQ(outbox.unacked(), 0u);
  EXPECT_EQ(std::filesystem::file_size(spill_), 0u);  // truncated once read back
  EXPECT_EQ(outbox.dropped(), 0u);
}

TEST_F(OutboxTest, RefillKeepsReportsSentFromTheFileSent) {
  Outbox outbox(2, spill_);
  for (int step = 1; step <= 6; ++step) outbox.Push(Metric(1, step));
  ASSERT_EQ(SendAll(outbox).size(), 6u);
  outbox.Ack(1, 3);  // 4 and 5 move to memory, already sent
  outbox.Push(Metric(1, 7));
  EXPECT_THAT(SendAll(outbox), ElementsAre(Pair(1, 7)));
  outbox.Rewind();
  EXPECT_THAT(SendAll(outbox), ElementsAre(Pair(1, 4), Pair(1, 5), Pair(1, 6), Pair(1, 7)));
}

TEST_F(OutboxTest, WithoutASpillFileDropsOnlyTheOldestMetricsAndCountsThem) {
  Outbox outbox(3, dir_ / "missing" / "outbox.spill");
  outbox.Push(Started(1));
  outbox.Push(Metric(1, 1));
  outbox.Push(Metric(1, 2));
  outbox.Push(Metric(1, 3));  // drops step 1
  outbox.Push(Ended(1));      // drops step 2
  outbox.Push(Ended(2));      // drops step 3
  outbox.Push(Ended(3));      // nothing droppable is left: kept past the bound
  EXPECT_EQ(outbox.dropped(), 3u);
  EXPECT_EQ(outbox.spilled(), 0u);
  EXPECT_EQ(outbox.unacked(), 4u);
  EXPECT_THAT(SendAll(outbox), ElementsAre(Pair(1, 1), Pair(1, 5), Pair(2, 1), Pair(3, 1)));
}

TEST_F(OutboxTest, RemovesItsSpillFileAndOneLeftBefore) {
  std::ofstream(spill_) << "reports of a worker that was killed";
  {
    Outbox outbox(1, spill_);
    EXPECT_FALSE(std::filesystem::exists(spill_));
  }
  {
    Outbox outbox(1, spill_);
    outbox.Push(Metric(1, 1));
    outbox.Push(Metric(1, 2));
    EXPECT_TRUE(std::filesystem::exists(spill_));
  }
  EXPECT_FALSE(std::filesystem::exists(spill_));
}

}  // namespace
}  // namespace ablate::worker
