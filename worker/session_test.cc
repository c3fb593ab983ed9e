#include "worker/session.h"

#include <unistd.h>

#include <algorithm>
#include <functional>
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

namespace ablate::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::Duration kWait = absl::Seconds(8);

using Predicate = std::function<bool(const v1::WorkerMessage&)>;

// A coordinator that records what the worker says and sends what the test tells it to.
class FakeCoordinator final : public v1::WorkerService::Service {
 public:
  grpc::Status Connect(
      grpc::ServerContext* /*context*/,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream) override {
    {
      absl::MutexLock lock(&write_mu_);
      stream_ = stream;
    }
    v1::WorkerMessage message;
    while (stream->Read(&message)) {
      absl::MutexLock lock(&mu_);
      received_.push_back(message);
    }
    {
      absl::MutexLock lock(&write_mu_);
      stream_ = nullptr;
    }
    absl::MutexLock lock(&mu_);
    ++closed_streams_;
    return grpc::Status::OK;
  }

  bool Send(const v1::CoordinatorMessage& message) {
    absl::MutexLock lock(&write_mu_);
    return stream_ != nullptr && stream_->Write(message);
  }

  // The first message received that satisfies `match`, waiting up to kWait for it.
  std::optional<v1::WorkerMessage> WaitFor(const Predicate& match) {
    absl::MutexLock lock(&mu_);
    std::optional<v1::WorkerMessage> found;
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& m : received_) {
        if (match(m)) {
          found = m;
          return true;
        }
      }
      return false;
    };
    mu_.AwaitWithTimeout(absl::Condition(&seen), kWait);
    return found;
  }

  bool WaitForClosedStream() {
    absl::MutexLock lock(&mu_);
    auto closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_streams_ > 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&closed), kWait);
  }

  std::vector<v1::WorkerMessage> Received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }

 private:
  absl::Mutex write_mu_;
  grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream_
      ABSL_GUARDED_BY(write_mu_) = nullptr;
  absl::Mutex mu_;
  std::vector<v1::WorkerMessage> received_ ABSL_GUARDED_BY(mu_);
  int closed_streams_ ABSL_GUARDED_BY(mu_) = 0;
};

// A gRPC server on loopback holding one FakeCoordinator; port 0 picks a free port.
class TestServer {
 public:
  explicit TestServer(int port) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&coordinator_);
    server_ = builder.BuildAndStart();
  }
  ~TestServer() { server_->Shutdown(std::chrono::system_clock::now()); }

  int port() const { return port_; }
  FakeCoordinator& coordinator() { return coordinator_; }

 private:
  FakeCoordinator coordinator_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

Predicate IsHello() {
  return [](const v1::WorkerMessage& m) { return m.has_hello(); };
}
Predicate IsEnded(uint64_t attempt_id) {
  return [=](const v1::WorkerMessage& m) {
    return m.has_attempt_ended() && m.attempt_ended().attempt_id() == attempt_id;
  };
}
Predicate IsStarted(uint64_t attempt_id) {
  return [=](const v1::WorkerMessage& m) {
    return m.has_job_event() && m.job_event().attempt_id() == attempt_id &&
           m.job_event().event().has_started();
  };
}

v1::CoordinatorMessage Assign(uint64_t attempt_id, const std::string& behavior,
                              const std::vector<uint32_t>& slots = {}, int delay_ms = 0) {
  v1::CoordinatorMessage message;
  v1::Assignment& assign = *message.mutable_assign();
  assign.set_attempt_id(attempt_id);
  for (uint32_t slot : slots) assign.add_slot_indices(slot);
  v1::JobSpec& job = *assign.mutable_job();
  job.set_job_id(absl::StrCat("job-", attempt_id));
  job.mutable_config()->set_steps(3);
  v1::CellValue* cell = job.add_cell();
  cell->set_dimension("behavior");
  cell->set_value(behavior);
  cell = job.add_cell();
  cell->set_dimension("delay_ms");
  cell->set_value(absl::StrCat(delay_ms));
  return message;
}

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

class SessionTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(work_dir_); }

  std::unique_ptr<Session> MakeSession(int port, uint32_t slots) {
    SessionOptions options;
    options.coordinator = absl::StrCat("127.0.0.1:", port);
    options.info.set_worker_id("w1");
    options.info.set_hostname("host");
    options.info.set_version("test");
    for (v1::Slot& slot : CpuSlots(slots)) *options.info.add_slots() = slot;
    options.trainer.trainer_path = ABLATE_FAKE_TRAINER;
    options.trainer.work_dir = work_dir_;
    options.heartbeat_interval = absl::Milliseconds(200);
    options.min_backoff = absl::Milliseconds(50);
    options.max_backoff = absl::Milliseconds(400);
    options.stop_grace = absl::Seconds(2);
    options.drain_timeout = absl::Seconds(2);
    auto session = std::make_unique<Session>(std::move(options));
    session->Start();
    return session;
  }

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
  // Every event of the attempt came before its attempt_ended, in the trainer's order.
  EXPECT_EQ(EventKinds(server.coordinator().Received(), 7),
            "started log metrics metrics metrics finished");

  // The slot is free again.
  ASSERT_TRUE(server.coordinator().Send(Assign(8, "succeed", {0})));
  ended = server.coordinator().WaitFor(IsEnded(8));
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->attempt_ended().succeeded());
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
    TestServer second(port);
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
    const std::vector<v1::WorkerMessage> received = second.coordinator().Received();
    EXPECT_TRUE(received.front().has_hello());
    EXPECT_EQ(EventKinds(received, 5), "metrics metrics metrics finished");
  }
  // Its report delivered, attempt 5 is gone from the hello of the next stream.
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

}  // namespace
}  // namespace ablate::worker
