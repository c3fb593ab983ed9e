#include "worker/testing/fake_coordinator.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ablate::worker::testing {

grpc::Status FakeCoordinator::Connect(
    grpc::ServerContext* /*context*/,
    grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream) {
  {
    absl::MutexLock lock(&write_mu_);
    stream_ = stream;
  }
  v1::WorkerMessage message;
  grpc::Status refusal;
  while (stream->Read(&message)) {
    std::optional<v1::CoordinatorMessage> answer;
    {
      absl::MutexLock lock(&mu_);
      received_.push_back(message);
      if (message.has_hello() && !hello_refusal_.ok()) {
        refusal = hello_refusal_;
        break;
      }
      if (message.has_hello()) {
        v1::Welcome& welcome = *answer.emplace().mutable_welcome();
        welcome.set_heartbeat_interval_ms(200);
        welcome.set_lease_timeout_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(lease_)));
        for (const v1::Ack& ack : welcome_acks_) *welcome.add_acks() = ack;
      } else if (message.has_heartbeat() && lease_ > absl::ZeroDuration() && answer_heartbeats_) {
        answer.emplace().mutable_heartbeat_reply()->set_number(message.heartbeat().number());
      } else if (auto_ack_ && (message.has_job_event() || message.has_attempt_ended())) {
        v1::Ack& ack = *answer.emplace().mutable_ack();
        const bool event = message.has_job_event();
        ack.set_job_id(event ? message.job_event().job_id() : message.attempt_ended().job_id());
        ack.set_attempt_id(event ? message.job_event().attempt_id()
                                 : message.attempt_ended().attempt_id());
        ack.set_sequence(event ? message.job_event().sequence()
                               : message.attempt_ended().sequence());
      }
    }
    if (answer.has_value()) Send(*answer);
  }
  {
    absl::MutexLock lock(&write_mu_);
    stream_ = nullptr;
  }
  absl::MutexLock lock(&mu_);
  ++closed_streams_;
  return refusal;
}

void FakeCoordinator::SetHelloRefusal(grpc::Status refusal) {
  absl::MutexLock lock(&mu_);
  hello_refusal_ = std::move(refusal);
}

bool FakeCoordinator::Send(const v1::CoordinatorMessage& message) {
  absl::MutexLock lock(&write_mu_);
  return stream_ != nullptr && stream_->Write(message);
}

std::optional<v1::WorkerMessage> FakeCoordinator::WaitFor(const Predicate& match) {
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

bool FakeCoordinator::WaitUntil(
    const std::function<bool(const std::vector<v1::WorkerMessage>&)>& done) {
  absl::MutexLock lock(&mu_);
  auto met = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done(received_); };
  return mu_.AwaitWithTimeout(absl::Condition(&met), kWait);
}

bool FakeCoordinator::WaitForClosedStream() {
  absl::MutexLock lock(&mu_);
  auto closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_streams_ > 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&closed), kWait);
}

std::vector<v1::WorkerMessage> FakeCoordinator::Received() {
  absl::MutexLock lock(&mu_);
  return received_;
}

void FakeCoordinator::SetWelcomeAcks(std::vector<v1::Ack> acks) {
  absl::MutexLock lock(&mu_);
  welcome_acks_ = std::move(acks);
}

void FakeCoordinator::SetAutoAck(bool on) {
  absl::MutexLock lock(&mu_);
  auto_ack_ = on;
}

void FakeCoordinator::SetLease(absl::Duration lease) {
  absl::MutexLock lock(&mu_);
  lease_ = lease;
}

void FakeCoordinator::SetAnswerHeartbeats(bool on) {
  absl::MutexLock lock(&mu_);
  answer_heartbeats_ = on;
}

TestServer::TestServer(int port, bool auto_ack, std::vector<v1::Ack> welcome_acks) {
  coordinator_.SetAutoAck(auto_ack);
  coordinator_.SetWelcomeAcks(std::move(welcome_acks));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterService(&coordinator_);
  server_ = builder.BuildAndStart();
}

TestServer::~TestServer() { server_->Shutdown(std::chrono::system_clock::now()); }

Predicate IsHello() {
  return [](const v1::WorkerMessage& m) { return m.has_hello(); };
}

Predicate IsStarted(uint64_t attempt_id) {
  return [=](const v1::WorkerMessage& m) {
    return m.has_job_event() && m.job_event().attempt_id() == attempt_id &&
           m.job_event().event().has_started();
  };
}

Predicate IsEnded(uint64_t attempt_id) {
  return [=](const v1::WorkerMessage& m) {
    return m.has_attempt_ended() && m.attempt_ended().attempt_id() == attempt_id;
  };
}

v1::CoordinatorMessage Assign(uint64_t attempt_id, const std::string& behavior,
                              const std::vector<uint32_t>& slots, int delay_ms, uint32_t steps) {
  v1::CoordinatorMessage message;
  v1::Assignment& assign = *message.mutable_assign();
  assign.set_attempt_id(attempt_id);
  for (uint32_t slot : slots) assign.add_slot_indices(slot);
  v1::JobSpec& job = *assign.mutable_job();
  job.set_job_id(absl::StrCat("job-", attempt_id));
  job.mutable_config()->set_steps(steps);
  v1::CellValue* cell = job.add_cell();
  cell->set_dimension("behavior");
  cell->set_value(behavior);
  cell = job.add_cell();
  cell->set_dimension("delay_ms");
  cell->set_value(absl::StrCat(delay_ms));
  return message;
}

}  // namespace ablate::worker::testing
