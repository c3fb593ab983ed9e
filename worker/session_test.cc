#include "worker/session.h"

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
#include "worker/slots.h"
#include "worker/testing/fake_coordinator.h"

namespace ablate::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using testing::Assign;
using testing::IsEnded;
using testing::IsHello;
using testing::IsStarted;
using testing::Predicate;
using testing::TestServer;

v1::CoordinatorMessage Cancel(uint64_t attempt_id) {
  v1::CoordinatorMessage message;
  message.mutable_cancel()->set_job_id(absl::StrCat("job-", attempt_id));
  message.mutable_cancel()->set_attempt_id(attempt_id);
  return message;
}

// The events of one attempt as received, e.g. "started log metrics metrics metrics finished".
std::string EventKinds(const std::vector<v1::WorkerMessage>& messages, uint64_t attempt_id) {
  std::string kinds;
  for (const auto& m : messages) {
    if (!m.has_job_event() || m.job_event().attempt_id() != attempt_id) continue;
    const v1::TrainerEvent& e = m.job_event().event();
    absl::StrAppend(&kinds, kinds.empty() ? "" : " ",
                    e.has_started()   ? "started"
                    : e.has_metrics() ? "metrics"
                    : e.has_log()     ? "log"
                                      : "finished");
  }
  return kinds;
}

// The sequences of one attempt's reports as received, in order.
std::vector<uint64_t> Sequences(const std::vector<v1::WorkerMessage>& messages,
                                uint64_t attempt_id) {
  std::vector<uint64_t> sequences;
  for (const auto& m : messages) {
    if (m.has_job_event() && m.job_event().attempt_id() == attempt_id) {
      sequences.push_back(m.job_event().sequence());
    } else if (m.has_attempt_ended() && m.attempt_ended().attempt_id() == attempt_id) {
      sequences.push_back(m.attempt_ended().sequence());
    }
  }
  return sequences;
}

std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> range;
  for (uint64_t i = first; i <= last; ++i) range.push_back(i);
  return range;
}

Predicate HeartbeatWith(const std::function<bool(const v1::Heartbeat&)>& match) {
  return [=](const v1::WorkerMessage& m) { return m.has_heartbeat() && match(m.heartbeat()); };
}

v1::Ack MakeAck(uint64_t attempt_id, uint64_t sequence) {
  v1::Ack ack;
  ack.set_job_id(absl::StrCat("job-", attempt_id));
  ack.set_attempt_id(attempt_id);
  ack.set_sequence(sequence);
  return ack;
}

class SessionTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(work_dir_); }

  // With `gpus`, the slots are CUDA slots whose health `gpus` reads every 50 ms.
  std::unique_ptr<Session> MakeSession(int port, uint32_t slots, size_t max_buffered = 10000,
                                       std::shared_ptr<GpuMonitor> gpus = nullptr) {
    SessionOptions options;
    options.coordinator = absl::StrCat("127.0.0.1:", port);
    options.info.set_worker_id("w1");
    options.info.set_hostname("host");
    options.info.set_version("test");
    for (v1::Slot& slot : CpuSlots(slots)) {
      if (gpus != nullptr) slot.set_kind(v1::DEVICE_KIND_CUDA);
      *options.info.add_slots() = slot;
    }
    options.gpu_monitor = std::move(gpus);
    options.gpu_sample_interval = absl::Milliseconds(50);
    options.trainer.trainer_path = ABLATE_FAKE_TRAINER;
    options.trainer.work_dir = work_dir_;
    options.heartbeat_interval = absl::Milliseconds(200);
    options.min_backoff = absl::Milliseconds(50);
    options.max_backoff = absl::Milliseconds(400);
    options.stop_grace = absl::Seconds(2);
    options.drain_timeout = absl::Seconds(2);
    options.max_buffered = max_buffered;
    options.batching = batching_;
    options.roots.checkpoint_roots = {work_dir_ / "checkpoints"};
    auto session = std::make_unique<Session>(std::move(options));
    session->Start();
    return session;
  }

  // The trainer's metric events coalesce as in production unless a test says otherwise.
  ReportBatcherOptions batching_;
  static inline int counter_ = 0;
  const std::filesystem::path work_dir_ = std::filesystem::path(::testing::TempDir()) /
                                          absl::StrCat("session_test-", getpid(), "-", counter_++);
};

TEST_F(SessionTest, HelloCarriesTheSlotsAndHeartbeatsFollow) {
  TestServer server(0);
  auto session = MakeSession(server.port(), 2);
  std::optional<v1::WorkerMessage> hello = server.coordinator().WaitFor(IsHello());
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(hello->hello().worker_id(), "w1");
  EXPECT_EQ(hello->hello().hostname(), "host");
  ASSERT_EQ(hello->hello().slots_size(), 2);
  EXPECT_EQ(hello->hello().slots(1).kind(), v1::DEVICE_KIND_CPU);
  EXPECT_EQ(hello->hello().running_size(), 0);
  EXPECT_TRUE(server.coordinator().Received().front().has_hello());  // first on the stream
  EXPECT_TRUE(
      server.coordinator().WaitFor([](const v1::WorkerMessage& m) { return m.has_heartbeat(); }));
  // Ready for work once welcomed, until it shuts down.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!session->Ready() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_TRUE(session->Ready());
  session->Shutdown();
  EXPECT_FALSE(session->Ready());
}

// Reports fixed readings, per NVML index.
class FixedGpus final : public GpuMonitor {
 public:
  absl::StatusOr<GpuSample> Sample(uint32_t index) override {
    return GpuSample{.utilization_percent = 80.0 + index,
                     .memory_used_bytes = 3'000'000'000,
                     .memory_total_bytes = 80'000'000'000,
                     .temperature_celsius = 55};
  }
};

TEST_F(SessionTest, AttemptsOnGpusReportTheirHealthAsMetrics) {
  TestServer server(0);
  auto session = MakeSession(server.port(), 2, 10000, std::make_shared<FixedGpus>());
  ASSERT_TRUE(server.coordinator().WaitFor(IsHello()));
  // The fake trainer sleeps before its first metric: the GPUs are sampled meanwhile.
  ASSERT_TRUE(server.coordinator().Send(Assign(7, "slow", {1}, /*delay_ms=*/1000)));
  std::optional<v1::WorkerMessage> health =
      server.coordinator().WaitFor([](const v1::WorkerMessage& m) {
        // Three points per sample; samples 50 ms apart may share a report.
        const int points = m.job_event().event().metrics().points_size();
        return m.has_job_event() && points > 0 && points % 3 == 0;
      });
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(health->job_event().job_id(), "job-7");
  const auto& points = health->job_event().event().metrics().points();
  EXPECT_EQ(points[0].name(), "gpu/0/utilization_percent");  // the job's first GPU: slot 1
  EXPECT_EQ(points[0].value(), 81.0);
  EXPECT_EQ(points[0].step(), 0);  // no training step yet
  EXPECT_GT(points[0].wall_time(), 0);
  EXPECT_EQ(points[1].name(), "gpu/0/memory_used_bytes");
  EXPECT_EQ(points[1].value(), 3e9);
  EXPECT_EQ(points[2].name(), "gpu/0/temperature_celsius");
  EXPECT_EQ(points[2].value(), 55.0);
  // The end stays the attempt's last report, though sampling goes on every 50 ms.
  ASSERT_TRUE(server.coordinator().WaitFor(IsEnded(7)));
  absl::SleepFor(absl::Milliseconds(300));
  const std::vector<v1::WorkerMessage> received = server.coordinator().Received();
  auto end = std::find_if(received.begin(), received.end(), IsEnded(7));
  EXPECT_TRUE(std::none_of(end, received.end(), [](const v1::WorkerMessage& m) {
    return m.has_job_event() && m.job_event().attempt_id() == 7;
  }));
}

TEST_F(SessionTest, AssignmentRunsTheTrainerAndRelaysItsEvents) {
  TestServer server(0);
  auto session = MakeSession(server.port(), 1);
  ASSERT_TRUE(server.coordinator().WaitFor(IsHello()));
  ASSERT_TRUE(server.coordinator().Send(Assign(7, "succeed", {0})));
  std::optional<v1::WorkerMessage> ended = server.coordinator().WaitFor(IsEnded(7));
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->attempt_ended().succeeded());
  EXPECT_FALSE(ended->attempt_ended().cancelled());
  EXPECT_EQ(ended->attempt_ended().job_id(), "job-7");
  // The trainer's last word rides on the attempt's end.
  EXPECT_TRUE(ended->attempt_ended().finished().ok());
  EXPECT_EQ(ended->attempt_ended().finished().steps(), 3u);
  // Every event of the attempt came before its attempt_ended, in the trainer's order, each
  // report numbered; the three metric events (one point each) became one report.
  EXPECT_EQ(EventKinds(server.coordinator().Received(), 7), "started log metrics finished");
  EXPECT_EQ(Sequences(server.coordinator().Received(), 7), Range(1, 5));

  // The slot is free again.
  ASSERT_TRUE(server.coordinator().Send(Assign(8, "succeed", {0})));
  ended = server.coordinator().WaitFor(IsEnded(8));
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->attempt_ended().succeeded());
}

// The end of the trainer's log goes out as a LogTail, the last one before the attempt's end.
TEST_F(SessionTest, TheTailOfTheTrainersLogArrivesBeforeTheAttemptsEnd) {
  TestServer server(0);
  auto session = MakeSession(server.port(), 1);
  ASSERT_TRUE(server.coordinator().WaitFor(IsHello()));
  ASSERT_TRUE(server.coordinator().Send(Assign(5, "fail-silent", {0})));
  ASSERT_TRUE(server.coordinator().WaitFor(IsEnded(5)));
  const std::vector<v1::WorkerMessage> received = server.coordinator().Received();
  const auto ended = std::find_if(received.begin(), received.end(), IsEnded(5));
  const auto tail = std::find_if(received.begin(), ended, [](const v1::WorkerMessage& m) {
    return m.has_log_tail() && m.log_tail().attempt_id() == 5;
  });
  ASSERT_NE(tail, ended) << "no log tail before the attempt's end";
  EXPECT_EQ(tail->log_tail().job_id(), "job-5");
  EXPECT_THAT(
      std::vector<std::string>(tail->log_tail().lines().begin(), tail->log_tail().lines().end()),
      ElementsAre("loading data", "out of memory", "bad byte ?? here"));
  EXPECT_FALSE(tail->log_tail().truncated());
}

TEST_F(SessionTest, CancelStopsTheAttemptAndUnknownCancelsAreIgnored) {
  TestServer server(0);
  auto session = MakeSession(server.port(), 1);
  ASSERT_TRUE(server.coordinator().WaitFor(IsHello()));
  ASSERT_TRUE(server.coordinator().Send(Cancel(99)));
  ASSERT_TRUE(server.coordinator().Send(Assign(3, "sleep")));
  ASSERT_TRUE(server.coordinator().WaitFor(IsStarted(3)));
  ASSERT_TRUE(server.coordinator().Send(Cancel(3)));
  std::optional<v1::WorkerMessage> ended = server.coordinator().WaitFor(IsEnded(3));
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->attempt_ended().cancelled());
  EXPECT_FALSE(ended->attempt_ended().succeeded());
  EXPECT_EQ(ended->attempt_ended().exit().reason(), "cancelled");
  for (const auto& m : server.coordinator().Received()) EXPECT_FALSE(IsEnded(99)(m));
}

TEST_F(SessionTest, AssignmentWithoutAFreeSlotIsRefused) {
  TestServer server(0);
  auto session = MakeSession(server.port(), 1);
  ASSERT_TRUE(server.coordinator().WaitFor(IsHello()));
  ASSERT_TRUE(server.coordinator().Send(Assign(1, "sleep")));
  ASSERT_TRUE(server.coordinator().WaitFor(IsStarted(1)));
  ASSERT_TRUE(server.coordinator().Send(Assign(2, "succeed")));
  ASSERT_TRUE(server.coordinator().Send(Assign(3, "succeed", {5})));
  std::optional<v1::WorkerMessage> ended = server.coordinator().WaitFor(IsEnded(2));
  ASSERT_TRUE(ended.has_value());
  EXPECT_FALSE(ended->attempt_ended().succeeded());
  // A refusal is not the job's fault: the coordinator is to place the job again.
  EXPECT_TRUE(ended->attempt_ended().interrupted());
  EXPECT_FALSE(ended->attempt_ended().cancelled());
  EXPECT_THAT(ended->attempt_ended().exit().reason(), StartsWith("not started: no free slot"));
  ended = server.coordinator().WaitFor(IsEnded(3));
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->attempt_ended().interrupted());
  EXPECT_THAT(ended->attempt_ended().exit().reason(), HasSubstr("slot 5 does not exist"));
}

// The failure this fixes: a sweep's checkpoint_root made workers create, write and prune
// folders at any path.
TEST_F(SessionTest, AJobCheckpointingOutsideTheRootsFailsUnstarted) {
  TestServer server(0);
  auto session = MakeSession(server.port(), 1);
  ASSERT_TRUE(server.coordinator().WaitFor(IsHello()));
  const std::filesystem::path outside = work_dir_ / "not-a-root" / "s" / "j";
  v1::CoordinatorMessage assign = Assign(4, "succeed", {0});
  assign.mutable_assign()->mutable_job()->set_checkpoint_dir(outside.string());
  ASSERT_TRUE(server.coordinator().Send(assign));
  std::optional<v1::WorkerMessage> ended = server.coordinator().WaitFor(IsEnded(4));
  ASSERT_TRUE(ended.has_value());
  EXPECT_FALSE(ended->attempt_ended().succeeded());
  // Not interrupted: every worker would refuse it the same way, so the job fails for good.
  EXPECT_FALSE(ended->attempt_ended().interrupted());
  EXPECT_THAT(ended->attempt_ended().exit().reason(),
              HasSubstr(absl::StrCat("checkpoint_dir ", outside.string(), " is outside")));
  for (const auto& m : server.coordinator().Received()) EXPECT_FALSE(IsStarted(4)(m));
  EXPECT_FALSE(std::filesystem::exists(work_dir_ / "not-a-root"));

  // Inside the root the same job runs.
  assign = Assign(5, "succeed", {0});
  assign.mutable_assign()->mutable_job()->set_checkpoint_dir(
      (work_dir_ / "checkpoints" / "s" / "j").string());
  ASSERT_TRUE(server.coordinator().Send(assign));
  ASSERT_TRUE(server.coordinator().WaitFor(IsStarted(5)));
}

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

TEST_F(SessionTest, ShutdownStopsTrainersReportsThemAndClosesTheStream) {
  TestServer server(0);
  auto session = MakeSession(server.port(), 1);
  ASSERT_TRUE(server.coordinator().WaitFor(IsHello()));
  ASSERT_TRUE(server.coordinator().Send(Assign(6, "sleep")));
  ASSERT_TRUE(server.coordinator().WaitFor(IsStarted(6)));
  const absl::Time start = absl::Now();
  session->Shutdown();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  std::optional<v1::WorkerMessage> ended = server.coordinator().WaitFor(IsEnded(6));
  ASSERT_TRUE(ended.has_value());
  EXPECT_FALSE(ended->attempt_ended().succeeded());
  EXPECT_FALSE(ended->attempt_ended().cancelled());
  EXPECT_TRUE(ended->attempt_ended().interrupted());
  EXPECT_EQ(ended->attempt_ended().exit().reason(), "worker shutting down");
  // The drain came first, so that the coordinator assigns nothing here once it sees the report.
  const std::vector<v1::WorkerMessage> received = server.coordinator().Received();
  auto drain = std::find_if(received.begin(), received.end(),
                            [](const v1::WorkerMessage& m) { return m.has_drain(); });
  ASSERT_NE(drain, received.end());
  EXPECT_EQ(drain->drain().reason(), "worker shutting down");
  EXPECT_LT(drain - received.begin(),
            std::find_if(received.begin(), received.end(), IsEnded(6)) - received.begin());
  EXPECT_TRUE(server.coordinator().WaitForClosedStream());
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

TEST_F(SessionTest, HeartbeatsKeepComingWhileATrainerRuns) {
  TestServer server(0);
  auto session = MakeSession(server.port(), 1);
  ASSERT_TRUE(server.coordinator().WaitFor(IsHello()));
  ASSERT_TRUE(server.coordinator().Send(Assign(2, "sleep")));
  ASSERT_TRUE(server.coordinator().WaitFor(IsStarted(2)));
  // The welcome's interval is 200 ms: five in a row come well within the wait.
  EXPECT_TRUE(server.coordinator().WaitUntil([](const std::vector<v1::WorkerMessage>& received) {
    auto started = std::find_if(received.begin(), received.end(), IsStarted(2));
    return std::count_if(started, received.end(),
                         [](const v1::WorkerMessage& m) { return m.has_heartbeat(); }) >= 5;
  }));
  std::optional<v1::WorkerMessage> heartbeat = server.coordinator().WaitFor(
      HeartbeatWith([](const v1::Heartbeat& h) { return h.events_unacked() == 2; }));
  ASSERT_TRUE(heartbeat.has_value());  // started and the log line, not acknowledged
  EXPECT_EQ(heartbeat->heartbeat().events_spilled(), 0u);
}

}  // namespace
}  // namespace ablate::worker
