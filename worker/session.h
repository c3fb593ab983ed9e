// A worker daemon's connection to its coordinator, and the trainers it runs for it.
//
// A Session holds one WorkerService.Connect stream at a time. Every stream opens with a hello
// (the WorkerInfo given in the options plus the attempts it holds: those still running and
// those whose attempt_ended has not been written yet, so that the coordinator does not declare
// lost an attempt whose report is on its way), then carries the trainers' events, an
// attempt_ended per attempt and a heartbeat every few seconds; the coordinator answers with
// welcome, assign and cancel:
//   assign  starts a TrainerProcess on the assigned slots (on free ones when it names none);
//           one that cannot start (slot busy or unknown, trainer missing, shutting down) ends
//           at once with attempt_ended{succeeded: false, interrupted: true} and the reason: a
//           refusal is never the job's fault.
//   cancel  stops that attempt (SIGTERM, SIGKILL after stop_grace); it then ends with
//           attempt_ended{cancelled: true}. A cancel for an attempt not running is ignored.
//
// When a stream fails, the session reconnects with exponential backoff (min_backoff doubling
// to max_backoff, each wait jittered), logging every try. Trainers keep running meanwhile;
// what they report waits in an Outbox (metrics and log lines may be dropped past
// max_buffered, nothing else is) and goes out, in order, after the next hello. A report whose
// write failed is sent again, so the coordinator may see it twice; one that gRPC accepted just
// before the stream broke may be lost, since the protocol has no acknowledgements.
//
// Threads, all owned and joined by the Session:
//   the connection thread connects, says hello, reads CoordinatorMessages and acts on them;
//   the sender thread writes the outbox and the heartbeats, one write at a time, and
//     destroys trainers that have ended (a trainer's own thread cannot join itself);
//   each TrainerProcess's threads, which append its reports to the outbox and, at its exit,
//     free its slots.
//
// Thread-safety: Start() once, then Shutdown() from any thread; the destructor calls it.
#ifndef ABLATE_WORKER_SESSION_H_
#define ABLATE_WORKER_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ablate/v1/worker.grpc.pb.h"
#include "ablate/v1/worker.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "worker/outbox.h"
#include "worker/trainer_process.h"

namespace ablate::worker {

struct SessionOptions {
  std::string coordinator = "127.0.0.1:7070";  // host:port
  // worker_id (stable for the daemon's life), hostname, slots and version; `running` is
  // filled in for each hello.
  v1::WorkerInfo info;
  TrainerOptions trainer;
  // Until a welcome names the coordinator's interval.
  absl::Duration heartbeat_interval = absl::Seconds(3);
  absl::Duration min_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(5);
  // Between SIGTERM and SIGKILL when a trainer is cancelled or the worker shuts down.
  absl::Duration stop_grace = kDefaultStopGrace;
  // How long Shutdown() waits for the last reports to be written, reconnecting if need be.
  absl::Duration drain_timeout = absl::Seconds(5);
  size_t max_buffered = 10000;
};

class Session {
 public:
  explicit Session(SessionOptions options);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // Starts connecting; returns at once.
  void Start();

  // Queues a drain, so that the coordinator assigns nothing more here, then stops every
  // trainer (SIGTERM, so it can checkpoint; SIGKILL after stop_grace), queues
  // their attempt_ended reports, waits up to drain_timeout for the outbox to be written,
  // closes the stream and joins every thread. Assignments arriving meanwhile are refused.
  // Returns at once when the session was never started or is already shut down.
  void Shutdown();

 private:
  using Stream = grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>;

  struct Running {
    std::string job_id;
    std::vector<uint32_t> slots;
    bool cancelled = false;  // the coordinator asked for the stop
    std::unique_ptr<TrainerProcess> process;
  };

  void RunConnection();  // the connection thread
  void RunSender();      // the sender thread
  // One stream, from connect to its end. True when the stream was healthy, which resets the
  // backoff: the coordinator said something on it, or it stayed open for max_backoff.
  bool Converse();
  v1::WorkerMessage Hello();
  bool Write(const v1::WorkerMessage& message);

  void HandleAssign(const v1::Assignment& assignment);
  void HandleCancel(const v1::CancelAttempt& cancel);
  void OnTrainerExit(v1::AttemptEnded ended);
  absl::StatusOr<std::vector<v1::Slot>> PickSlots(const v1::Assignment& assignment)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Refuse(const v1::Assignment& assignment, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SessionOptions options_;

  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;   // Shutdown() began: no new attempts
  bool closing_ ABSL_GUARDED_BY(mu_) = false;    // the threads are to finish
  bool connected_ ABSL_GUARDED_BY(mu_) = false;  // a stream is open and its hello written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;    // the sender holds a message from the outbox
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_);
  Outbox outbox_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Running> running_ ABSL_GUARDED_BY(mu_);  // by attempt id
  // Attempts that ended and whose attempt_ended is not written yet, by attempt id; the sender
  // removes one once that write succeeds.
  std::map<uint64_t, v1::RunningAttempt> reporting_ ABSL_GUARDED_BY(mu_);
  std::set<uint32_t> busy_slots_ ABSL_GUARDED_BY(mu_);        // slot indices
  std::vector<std::unique_ptr<TrainerProcess>> ended_ ABSL_GUARDED_BY(mu_);
  // The current call's context, so that Shutdown() can cancel a stream that will not close.
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;

  // Serializes writes on the stream; never held together with mu_.
  absl::Mutex stream_mu_;
  Stream* stream_ ABSL_GUARDED_BY(stream_mu_) = nullptr;

  std::thread connection_thread_;
  std::thread sender_thread_;
};

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_SESSION_H_
