#include "worker/session.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
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
#include "worker/session_test_fixture.h"
#include "worker/testing/fake_coordinator.h"

namespace ablate::worker {
namespace {

using session_testing::Cancel;
using session_testing::EventKinds;
using session_testing::HeartbeatWith;
using session_testing::Range;
using session_testing::Sequences;
using session_testing::SessionTest;
using testing::Assign;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::IsEnded;
using testing::IsHello;
using testing::IsStarted;
using ::testing::StartsWith;
using testing::TestServer;

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

// A stale attempt (its job may run elsewhere now) is killed at once, not given the grace in
// which it would checkpoint: the trainer below ignores SIGTERM.
TEST_F(SessionTest, AStaleAttemptIsKilledWithoutGrace) {
  TestServer server(0);
  auto session = MakeSession(server.port(), 1);
  ASSERT_TRUE(server.coordinator().WaitFor(IsHello()));
  ASSERT_TRUE(server.coordinator().Send(Assign(4, "ignore-term")));
  ASSERT_TRUE(server.coordinator().WaitFor(IsStarted(4)));
  v1::CoordinatorMessage stale = Cancel(4);
  stale.mutable_cancel()->set_reason("attempt is no longer current");
  stale.mutable_cancel()->set_stale(true);
  ASSERT_TRUE(server.coordinator().Send(stale));
  std::optional<v1::WorkerMessage> ended = server.coordinator().WaitFor(IsEnded(4));
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->attempt_ended().cancelled());
  EXPECT_EQ(ended->attempt_ended().exit().reason(),
            "cancelled: attempt is no longer current: killed by SIGKILL after 0");
}

// A hello refused because another stream holds the worker's id is retried (a restarted worker's
// old stream may not have ended yet), then, past duplicate_for, taken as a refusal.
TEST_F(SessionTest, AnIdAnotherWorkerHoldsIsRefusedAfterAWhile) {
  TestServer server(0);
  server.coordinator().SetHelloRefusal(
      grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "worker w1 is already connected"));
  duplicate_for_ = absl::Milliseconds(500);
  bool refused = false;
  absl::Mutex mu;
  on_refused_ = [&] {
    absl::MutexLock lock(&mu);
    refused = true;
  };
  auto session = MakeSession(server.port(), 1);
  ASSERT_TRUE(server.coordinator().WaitUntil([](const std::vector<v1::WorkerMessage>& m) {
    return std::count_if(m.begin(), m.end(), [](const auto& x) { return x.has_hello(); }) >= 2;
  }));
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&refused), absl::Seconds(5)));
  EXPECT_EQ(session->refused().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(session->refused().message(), HasSubstr("each worker needs an id of its own"));
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
  // A refusal is not the job's fault: the coordinator is to place the job again, and to back
  // off from this worker, whose slots it sees otherwise.
  EXPECT_TRUE(ended->attempt_ended().interrupted());
  EXPECT_TRUE(ended->attempt_ended().start_failed());
  EXPECT_TRUE(ended->attempt_ended().never_started());
  EXPECT_FALSE(ended->attempt_ended().cancelled());
  EXPECT_THAT(ended->attempt_ended().exit().reason(), StartsWith("not started: no free slot"));
  ended = server.coordinator().WaitFor(IsEnded(3));
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->attempt_ended().interrupted());
  EXPECT_TRUE(ended->attempt_ended().start_failed());
  EXPECT_THAT(ended->attempt_ended().exit().reason(), HasSubstr("slot 5 does not exist"));
}

// The failure this fixes: a worker whose trainer could not be run reported each assignment
// interrupted, and was handed the job again at once, thousands of times a minute, leaving an
// attempt folder each time.
TEST_F(SessionTest, ATrainerThatCannotBeRunFailsTheStartUntilItCanAgain) {
  std::filesystem::create_directories(work_dir_);
  const std::filesystem::path trainer = work_dir_ / "ablate-train";
  std::filesystem::copy_file(ABLATE_FAKE_TRAINER, trainer);
  constexpr auto kExec = std::filesystem::perms::owner_exec | std::filesystem::perms::group_exec |
                         std::filesystem::perms::others_exec;
  std::filesystem::permissions(trainer, kExec, std::filesystem::perm_options::remove);
  trainer_path_ = trainer.string();
  TestServer server(0);
  auto session = MakeSession(server.port(), 1);
  ASSERT_TRUE(server.coordinator().WaitFor(IsHello()));
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!session->Ready() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(session->Ready());

  ASSERT_TRUE(server.coordinator().Send(Assign(1, "succeed", {0})));
  std::optional<v1::WorkerMessage> ended = server.coordinator().WaitFor(IsEnded(1));
  ASSERT_TRUE(ended.has_value());
  EXPECT_FALSE(ended->attempt_ended().succeeded());
  EXPECT_TRUE(ended->attempt_ended().interrupted());
  EXPECT_TRUE(ended->attempt_ended().start_failed());
  EXPECT_TRUE(ended->attempt_ended().never_started());
  const std::string reason = absl::StrCat("cannot run ", trainer.string(), ": Permission denied");
  EXPECT_EQ(ended->attempt_ended().exit().reason(), absl::StrCat("not started: ", reason));
  EXPECT_FALSE(std::filesystem::exists(work_dir_ / "job-1"));
  // A readiness probe says why it cannot take work.
  EXPECT_EQ(session->Readiness().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(session->Readiness().message(), absl::StrCat("cannot start trainers: ", reason));

  std::filesystem::permissions(trainer, kExec, std::filesystem::perm_options::add);
  ASSERT_TRUE(server.coordinator().Send(Assign(2, "succeed", {0})));
  ended = server.coordinator().WaitFor(IsEnded(2));
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->attempt_ended().succeeded());
  EXPECT_FALSE(ended->attempt_ended().start_failed());
  EXPECT_FALSE(ended->attempt_ended().never_started());
  EXPECT_TRUE(session->Ready());
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
  // Not interrupted: every worker would refuse it the same way, so the job fails for good; nor
  // is it this worker's failure to start a trainer. No trainer ran all the same.
  EXPECT_FALSE(ended->attempt_ended().interrupted());
  EXPECT_FALSE(ended->attempt_ended().start_failed());
  EXPECT_TRUE(ended->attempt_ended().never_started());
  EXPECT_TRUE(session->Ready());
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
