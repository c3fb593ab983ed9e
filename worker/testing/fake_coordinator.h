// A stand-in for the coordinator's WorkerService in the worker's tests: a gRPC server on
// loopback that records every message a worker sends, welcomes each stream (heartbeats every
// 200 ms, with the acks the test set, and no lease unless the test set one: then it answers
// each heartbeat, while the test lets it), optionally acknowledges each report as it arrives,
// and sends whatever else the test tells it to. Plus builders of the messages those tests send and
// predicates over the ones they receive; assignments name the fake trainer's behaviour
// (worker/testdata/fake_trainer.cc).
//
// Thread-safety: every method may be called from any thread.
#ifndef ABLATE_WORKER_TESTING_FAKE_COORDINATOR_H_
#define ABLATE_WORKER_TESTING_FAKE_COORDINATOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ablate/v1/worker.grpc.pb.h"
#include "ablate/v1/worker.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace ablate::worker::testing {

// How long the waits below wait.
inline constexpr absl::Duration kWait = absl::Seconds(8);

using Predicate = std::function<bool(const v1::WorkerMessage&)>;

class FakeCoordinator final : public v1::WorkerService::Service {
 public:
  grpc::Status Connect(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream) override;

  // Writes on the open stream; false when there is none or the write failed.
  bool Send(const v1::CoordinatorMessage& message);

  // The first message received that satisfies `match`, waiting up to kWait for it.
  std::optional<v1::WorkerMessage> WaitFor(const Predicate& match);
  // Waits up to kWait until what was received satisfies `done`.
  bool WaitUntil(const std::function<bool(const std::vector<v1::WorkerMessage>&)>& done);
  // Waits up to kWait for a stream to end.
  bool WaitForClosedStream();

  std::vector<v1::WorkerMessage> Received();

  void SetWelcomeAcks(std::vector<v1::Ack> acks);
  void SetAutoAck(bool on);
  // Welcomes with this lease from now on and, while `answer_heartbeats`, answers every
  // heartbeat with its HeartbeatReply; a zero lease (the default) answers none.
  void SetLease(absl::Duration lease);
  void SetAnswerHeartbeats(bool on);
  // Answers every hello from now on by ending its stream with `refusal` (OK: welcomes again).
  void SetHelloRefusal(grpc::Status refusal);

 private:
  absl::Mutex write_mu_;
  grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream_
      ABSL_GUARDED_BY(write_mu_) = nullptr;
  absl::Mutex mu_;
  std::vector<v1::WorkerMessage> received_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Ack> welcome_acks_ ABSL_GUARDED_BY(mu_);
  bool auto_ack_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration lease_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  bool answer_heartbeats_ ABSL_GUARDED_BY(mu_) = true;
  grpc::Status hello_refusal_ ABSL_GUARDED_BY(mu_);
  int closed_streams_ ABSL_GUARDED_BY(mu_) = 0;
};

// A gRPC server on 127.0.0.1:`port` holding one FakeCoordinator; port 0 picks a free port.
class TestServer {
 public:
  explicit TestServer(int port, bool auto_ack = false, std::vector<v1::Ack> welcome_acks = {});
  ~TestServer();  // ends every stream at once

  int port() const { return port_; }
  FakeCoordinator& coordinator() { return coordinator_; }

 private:
  FakeCoordinator coordinator_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

Predicate IsHello();
Predicate IsStarted(uint64_t attempt_id);
Predicate IsEnded(uint64_t attempt_id);

// Assigns job "job-<attempt_id>" running the fake trainer's `behavior` for `steps` steps.
v1::CoordinatorMessage Assign(uint64_t attempt_id, const std::string& behavior,
                              const std::vector<uint32_t>& slots = {}, int delay_ms = 0,
                              uint32_t steps = 3);

}  // namespace ablate::worker::testing

#endif  // ABLATE_WORKER_TESTING_FAKE_COORDINATOR_H_
