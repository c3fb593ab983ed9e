// What the session delivers across reconnects: buffered reports resent once and in order,
// spilled past the outbox's bound, and coalesced into batches without doubling any point.
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "worker/session.h"
#include "worker/session_test_fixture.h"
#include "worker/testing/fake_coordinator.h"

namespace ablate::worker {
namespace {

using session_testing::EventKinds;
using session_testing::HeartbeatWith;
using session_testing::MakeAck;
using session_testing::Range;
using session_testing::Sequences;
using session_testing::SessionTest;
using testing::Assign;
using ::testing::ElementsAre;
using testing::IsEnded;
using testing::IsHello;
using testing::IsStarted;
using testing::TestServer;

TEST_F(SessionTest, ReconnectsAfterARestartAndSendsWhatWasBuffered) {
  int port = 0;
  std::unique_ptr<Session> session;
  {
    TestServer first(0);
    port = first.port();
    session = MakeSession(port, 2);
    ASSERT_TRUE(first.coordinator().WaitFor(IsHello()));
    ASSERT_TRUE(first.coordinator().Send(Assign(4, "sleep", {0})));
    ASSERT_TRUE(first.coordinator().Send(Assign(5, "slow", {1}, /*delay_ms=*/600)));
    ASSERT_TRUE(first.coordinator().WaitFor(IsStarted(4)));
    ASSERT_TRUE(first.coordinator().WaitFor(IsStarted(5)));
  }
  // Attempt 5 finishes while no coordinator listens. Until its attempt_ended is written, the
  // hello still lists it, so that the coordinator does not declare it lost.
  absl::SleepFor(absl::Seconds(1));
  {
    TestServer second(port, /*auto_ack=*/true);
    ASSERT_EQ(second.port(), port);
    std::optional<v1::WorkerMessage> hello = second.coordinator().WaitFor(IsHello());
    ASSERT_TRUE(hello.has_value());
    ASSERT_EQ(hello->hello().running_size(), 2);
    EXPECT_EQ(hello->hello().running(0).attempt_id(), 4u);
    EXPECT_EQ(hello->hello().running(0).job_id(), "job-4");
    EXPECT_THAT(hello->hello().running(0).slot_indices(), ElementsAre(0u));
    EXPECT_EQ(hello->hello().running(1).attempt_id(), 5u);
    EXPECT_EQ(hello->hello().running(1).job_id(), "job-5");
    EXPECT_THAT(hello->hello().running(1).slot_indices(), ElementsAre(1u));

    std::optional<v1::WorkerMessage> ended = second.coordinator().WaitFor(IsEnded(5));
    ASSERT_TRUE(ended.has_value());
    EXPECT_TRUE(ended->attempt_ended().succeeded());
    // Nothing was acknowledged on the first stream, so everything comes again.
    ASSERT_TRUE(second.coordinator().WaitFor(
        HeartbeatWith([](const v1::Heartbeat& h) { return h.events_unacked() == 0; })));
    const std::vector<v1::WorkerMessage> received = second.coordinator().Received();
    EXPECT_TRUE(received.front().has_hello());
    EXPECT_EQ(EventKinds(received, 5), "started metrics finished");
    EXPECT_EQ(EventKinds(received, 4), "started log");
  }
  // Its end acknowledged, attempt 5 is gone from the hello of the next stream.
  TestServer third(port);
  ASSERT_EQ(third.port(), port);
  std::optional<v1::WorkerMessage> hello = third.coordinator().WaitFor(IsHello());
  ASSERT_TRUE(hello.has_value());
  ASSERT_EQ(hello->hello().running_size(), 1);
  EXPECT_EQ(hello->hello().running(0).attempt_id(), 4u);
  session->Shutdown();  // while the coordinator still listens for the last report
}

TEST_F(SessionTest, ResendsWhatWasNotAcknowledgedOnceAndInOrder) {
  batching_.max_points = 1;  // each trainer event its own report
  int port = 0;
  std::unique_ptr<Session> session;
  {
    TestServer first(0);
    port = first.port();
    session = MakeSession(port, 1);
    ASSERT_TRUE(first.coordinator().WaitFor(IsHello()));
    ASSERT_TRUE(first.coordinator().Send(Assign(7, "succeed", {0}, 0, /*steps=*/10)));
    // started, log, 10 metrics, finished, attempt_ended: sequences 1..14.
    ASSERT_TRUE(first.coordinator().WaitFor(IsEnded(7)));
    EXPECT_EQ(Sequences(first.coordinator().Received(), 7), Range(1, 14));
    v1::CoordinatorMessage ack;
    *ack.mutable_ack() = MakeAck(7, 4);
    ASSERT_TRUE(first.coordinator().Send(ack));
    ASSERT_TRUE(first.coordinator().WaitFor(
        HeartbeatWith([](const v1::Heartbeat& h) { return h.events_unacked() == 10; })));
  }
  // The next coordinator committed up to 6 (its ack of 5 and 6 never arrived).
  TestServer second(port, /*auto_ack=*/false, {MakeAck(7, 6)});
  ASSERT_EQ(second.port(), port);
  std::optional<v1::WorkerMessage> hello = second.coordinator().WaitFor(IsHello());
  ASSERT_TRUE(hello.has_value());
  // Its end is not acknowledged yet: the attempt is still the worker's.
  ASSERT_EQ(hello->hello().running_size(), 1);
  EXPECT_EQ(hello->hello().running(0).attempt_id(), 7u);
  ASSERT_TRUE(second.coordinator().WaitFor(IsEnded(7)));
  ASSERT_TRUE(second.coordinator().WaitFor(
      HeartbeatWith([](const v1::Heartbeat& h) { return h.events_unacked() == 8; })));
  EXPECT_EQ(Sequences(second.coordinator().Received(), 7), Range(7, 14));
  std::optional<v1::WorkerMessage> ended = second.coordinator().WaitFor(IsEnded(7));
  EXPECT_TRUE(ended->attempt_ended().succeeded());
  EXPECT_TRUE(ended->attempt_ended().finished().ok());
  v1::CoordinatorMessage ack;
  *ack.mutable_ack() = MakeAck(7, 14);
  ASSERT_TRUE(second.coordinator().Send(ack));
  ASSERT_TRUE(second.coordinator().WaitFor(
      HeartbeatWith([](const v1::Heartbeat& h) { return h.events_unacked() == 0; })));
  session->Shutdown();
  EXPECT_EQ(Sequences(second.coordinator().Received(), 7), Range(7, 14));  // no resend
}

TEST_F(SessionTest, SpillsPastTheBoundAndDeliversEveryReport) {
  batching_.max_points = 1;  // each trainer event its own report
  int port = 0;
  std::unique_ptr<Session> session;
  {
    TestServer first(0);
    port = first.port();
    session = MakeSession(port, 1, /*max_buffered=*/4);
    ASSERT_TRUE(first.coordinator().WaitFor(IsHello()));
    ASSERT_TRUE(first.coordinator().Send(Assign(3, "succeed", {0}, 0, /*steps=*/40)));
    // started, log, 40 metrics, finished, attempt_ended: 44 reports, 4 of them in memory.
    ASSERT_TRUE(first.coordinator().WaitFor(IsEnded(3)));
    EXPECT_EQ(Sequences(first.coordinator().Received(), 3), Range(1, 44));
    std::optional<v1::WorkerMessage> heartbeat = first.coordinator().WaitFor(
        HeartbeatWith([](const v1::Heartbeat& h) { return h.events_unacked() == 44; }));
    ASSERT_TRUE(heartbeat.has_value());
    EXPECT_EQ(heartbeat->heartbeat().events_spilled(), 40u);
    EXPECT_EQ(heartbeat->heartbeat().events_dropped(), 0u);
    EXPECT_GT(std::filesystem::file_size(work_dir_ / "outbox.spill"), 0u);
  }
  TestServer second(port, /*auto_ack=*/true);
  ASSERT_EQ(second.port(), port);
  std::optional<v1::WorkerMessage> heartbeat = second.coordinator().WaitFor(
      HeartbeatWith([](const v1::Heartbeat& h) { return h.events_unacked() == 0; }));
  ASSERT_TRUE(heartbeat.has_value());
  EXPECT_EQ(heartbeat->heartbeat().events_dropped(), 0u);
  EXPECT_EQ(Sequences(second.coordinator().Received(), 3), Range(1, 44));
  EXPECT_EQ(std::filesystem::file_size(work_dir_ / "outbox.spill"), 0u);
  session.reset();
  EXPECT_FALSE(std::filesystem::exists(work_dir_ / "outbox.spill"));
}

// The trainer's 1,000 metric events of one point each reach the coordinator as a few reports
// of many points; after a reconnect the unacknowledged ones come again unchanged, under the
// same (attempt, sequence), so a coordinator that stores each report once (by that key) holds
// every step exactly once.
TEST_F(SessionTest, CoalescedReportsCarryManyPointsAndAResendDoublesNone) {
  batching_.max_points = 256;
  batching_.max_delay = absl::Seconds(10);  // only the bound and the attempt's end close one
  int port = 0;
  std::unique_ptr<Session> session;
  std::map<uint64_t, std::string> first_reports;  // sequence -> the report's bytes
  // Committed up to the second report of points; the ack is lost with the stream.
  constexpr uint64_t kAcked = 4;
  {
    TestServer first(0);
    port = first.port();
    session = MakeSession(port, 1);
    ASSERT_TRUE(first.coordinator().WaitFor(IsHello()));
    ASSERT_TRUE(first.coordinator().Send(Assign(9, "succeed", {0}, 0, /*steps=*/1000)));
    ASSERT_TRUE(first.coordinator().WaitFor(IsEnded(9)));
    std::vector<int> sizes;
    for (const v1::WorkerMessage& m : first.coordinator().Received()) {
      if (m.has_job_event() && m.job_event().attempt_id() == 9) {
        first_reports[m.job_event().sequence()] = m.SerializeAsString();
        if (m.job_event().event().has_metrics()) {
          sizes.push_back(m.job_event().event().metrics().points_size());
        }
      }
    }
    // started, log, 3 full reports and the rest, finished, attempt_ended.
    EXPECT_THAT(sizes, ElementsAre(256, 256, 256, 232));
    EXPECT_EQ(Sequences(first.coordinator().Received(), 9), Range(1, 8));
  }
  TestServer second(port, /*auto_ack=*/false, {MakeAck(9, kAcked)});
  ASSERT_EQ(second.port(), port);
  ASSERT_TRUE(second.coordinator().WaitFor(IsEnded(9)));
  const std::vector<v1::WorkerMessage> resent = second.coordinator().Received();
  EXPECT_EQ(Sequences(resent, 9), Range(kAcked + 1, 8));
  std::map<int64_t, int> steps;
  for (const v1::WorkerMessage& m : resent) {
    if (!m.has_job_event() || m.job_event().attempt_id() != 9) continue;
    const uint64_t sequence = m.job_event().sequence();
    ASSERT_TRUE(first_reports.contains(sequence));
    EXPECT_EQ(m.SerializeAsString(), first_reports.at(sequence)) << "sequence " << sequence;
  }
  // What the coordinator stores: each sequence once. Every step appears exactly once in it.
  for (const auto& [sequence, bytes] : first_reports) {
    v1::WorkerMessage m;
    ASSERT_TRUE(m.ParseFromString(bytes));
    for (const v1::MetricPoint& point : m.job_event().event().metrics().points()) {
      ++steps[point.step()];
    }
  }
  ASSERT_EQ(steps.size(), 1000u);
  EXPECT_EQ(steps.begin()->first, 1);
  EXPECT_EQ(steps.rbegin()->first, 1000);
  for (const auto& [step, count] : steps) EXPECT_EQ(count, 1) << "step " << step;
  session->Shutdown();
}

}  // namespace
}  // namespace ablate::worker
