// A worker daemon's connection to its coordinator, and the trainers it runs for it.
//
// A Session holds one WorkerService.Connect stream at a time. Every stream opens with a hello
// (the WorkerInfo given in the options plus the attempts it holds: those still running and
// those whose attempt_ended the coordinator has not acknowledged yet, so that it does not
// declare lost an attempt whose report is on its way), then carries the trainers' events, an
// attempt_ended per attempt and a heartbeat every Welcome.heartbeat_interval_ms; the
// coordinator answers with welcome, assign, cancel and ack:
//   assign  starts a TrainerProcess on the assigned slots (on free ones when it names none);
//           one that cannot start ends at once with attempt_ended{succeeded: false,
//           interrupted: true, never_started: true} and the reason ("not started: ..."), since
//           the refusal is not the job's fault, and with start_failed too when it is the
//           worker's (a slot busy or unknown, a trainer that cannot be run, a work folder that
//           cannot be written), so that the coordinator backs off from this worker rather than
//           hand it the job again at once. Ready() is false from such a failure until a trainer
//           starts again. Only a job that no worker could start (checkpoint_dir or dataset
//           outside the roots, a job id that names no folder) ends not interrupted (still
//           never_started): its job fails.
//   cancel  stops that attempt (SIGTERM, SIGKILL after stop_grace); it then ends with
//           attempt_ended{cancelled: true}. A cancel for an attempt not running is ignored.
//   ack     (and Welcome.acks) the coordinator has committed the attempt's reports up to a
//           sequence: the session forgets them, and an attempt whose attempt_ended is acked
//           leaves the hello's list.
//
// A trainer's metric events wait up to options.batching.max_delay to be coalesced into one
// report of up to options.batching.max_points points (report_batcher.h); every other report
// enters the outbox at once, after the points its attempt produced before it.
//
// Reports (see outbox.h) are numbered per attempt and kept until acknowledged: on each stream,
// once the welcome has arrived (its acks applied), every report held goes out again, oldest
// first, so a report whose write gRPC accepted just before the stream broke is never lost, and
// the coordinator recognises what it already has by (attempt_id, sequence). Sending never waits
// for acks: a coordinator that sends none still gets every report, and gets them again after
// each reconnect. Past max_buffered reports in memory, the rest wait in
// <work_dir>/outbox.spill. Heartbeats go out every interval whatever else is queued, and carry
// the outbox's counters (spilled, dropped, unacked), which the log repeats whenever spilled or
// dropped changed.
//
// Every gpu_sample_interval, each running attempt on CUDA slots also reports its GPUs' health
// (gpu_monitor.h) as metric points at the trainer's latest step, when a GpuMonitor is given.
// The end of each held attempt's log goes out as LogTail messages (log_shipper.h says when),
// written directly rather than through the outbox: they are neither numbered nor acknowledged.
//
// When a stream fails, the session reconnects with exponential backoff (min_backoff doubling
// to max_backoff, each wait jittered), logging every try. Trainers keep running meanwhile, but
// not past the lease (lease.h): once the coordinator has answered nothing (no welcome, no
// heartbeat reply) for half the lease its welcome stated, whether the stream broke or stays
// open to a stuck coordinator, every running trainer is stopped as a cancel stops it (SIGTERM,
// so it checkpoints; SIGKILL by three quarters of the lease, or after stop_grace if sooner),
// and the fence is logged with the jobs and how long the coordinator had been silent. Such an
// attempt ends with attempt_ended{interrupted: true} and the fence as its reason, delivered as
// any report is, once a stream is welcomed again; the coordinator ends the attempt once,
// whichever comes first of that report and its own lease expiry. Assignments arriving while
// the lease is lapsed are refused as interrupted. A welcome without a lease (an older
// coordinator) means no fencing.
//
// Start() first stops any trainer left running by an earlier worker on the same work_dir (see
// trainer_pids.h), so that no orphan trains beside the job's next attempt.
//
// Threads, all owned and joined by the Session:
//   the connection thread connects, says hello, reads CoordinatorMessages and acts on them;
//   the sender thread writes the outbox and the heartbeats, one write at a time, and
//     destroys trainers that have ended (a trainer's own thread cannot join itself);
//   the lease thread, which fences the trainers when the lease lapses (a write blocked on a
//     stuck stream holds the sender, so the sender cannot be the one to watch);
//   each TrainerProcess's threads, which append its reports to the outbox and, at its exit,
//     free its slots.
//
// Thread-safety: Start() once, then Shutdown() from any thread; the destructor calls it.
#ifndef ABLATE_WORKER_SESSION_H_
#define ABLATE_WORKER_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ablate/v1/worker.grpc.pb.h"
#include "ablate/v1/worker.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "worker/gpu_monitor.h"
#include "worker/job_paths.h"
#include "worker/lease.h"
#include "worker/log_shipper.h"
#include "worker/outbox.h"
#include "worker/report_batcher.h"
#include "worker/trainer_process.h"

namespace ablate::worker {

struct SessionOptions {
  std::string coordinator = "127.0.0.1:7070";  // host:port
  // The stream's channel credentials (common/auth/tls.h); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Sent as the stream's bearer token when not empty: a worker token bound to info.worker_id.
  std::string token;
  // Where assigned jobs may checkpoint and read data; an assignment outside them is refused
  // for good (its job FAILED, the reason on it) before any trainer starts.
  PathRoots roots;
  // worker_id (stable for the daemon's life), hostname, slots and version; `running` is
  // filled in for each hello.
  v1::WorkerInfo info;
  TrainerOptions trainer;
  // Until a welcome names the coordinator's interval.
  absl::Duration heartbeat_interval = absl::Seconds(3);
  absl::Duration min_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(5);
  // Between SIGTERM and SIGKILL when a trainer is cancelled or the worker shuts down: long
  // enough for a large model's checkpoint to reach its storage (an 8B model's weights and
  // AdamW states are some 128 GB); a SIGKILL mid-write loses that checkpoint, and the run
  // resumes from the one before.
  absl::Duration stop_grace = absl::Minutes(5);
  // How long the coordinator may refuse this worker's hello because another stream holds its
  // id (ALREADY_EXISTS) before the worker gives up as refused: a restarted worker's old stream
  // ends within a lease, a second daemon under the same --worker-id never does.
  absl::Duration duplicate_for = absl::Minutes(1);
  // How long Shutdown() waits for the last reports to be written, reconnecting if need be.
  absl::Duration drain_timeout = absl::Seconds(5);
  // Reports held in memory before the rest spill to <trainer.work_dir>/outbox.spill.
  size_t max_buffered = 10000;
  // How a trainer's metric events are coalesced into reports (report_batcher.h): by default
  // up to 4,096 points, none waiting longer than 100 ms.
  ReportBatcherOptions batching;
  // Reads the GPUs' health for the attempts on CUDA slots; null: no GPU metrics.
  std::shared_ptr<GpuMonitor> gpu_monitor;
  absl::Duration gpu_sample_interval = absl::Seconds(10);
  LogShipperOptions log_tails;
  // Called once, from the connection thread, when the coordinator refuses this worker's
  // credentials (UNAUTHENTICATED or PERMISSION_DENIED before it said anything: a wrong token
  // or worker id), or its id stays another stream's past duplicate_for: what no reconnect
  // mends. The session stops connecting; refused() says why.
  std::function<void()> on_refused;
};

class Session {
 public:
  explicit Session(SessionOptions options);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // Stops leftover trainers (waiting for them to die, up to a bound), then starts connecting.
  void Start();

  // Queues a drain, so that the coordinator assigns nothing more here, then stops every
  // trainer (SIGTERM, so it can checkpoint; SIGKILL after stop_grace), queues
  // their attempt_ended reports, waits up to drain_timeout for every report to be written
  // (and acknowledged, when the coordinator has acknowledged any report since Start()),
  // closes the stream and joins every thread. Assignments arriving meanwhile are refused.
  // Returns at once when the session was never started or is already shut down.
  void Shutdown();

  // The coordinator's refusal of this worker's credentials (SessionOptions::on_refused); OK
  // until one came.
  absl::Status refused() const;

  // OK while the worker can take work: connected, welcomed by the coordinator, not shutting
  // down, and its last try to start a trainer did not fail (start_failed); else Unavailable
  // saying why. What a readiness probe asks (worker/health_server.h).
  absl::Status Readiness() const;
  bool Ready() const { return Readiness().ok(); }

 private:
  using Stream = grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>;

  struct Running {
    std::string job_id;
    std::vector<uint32_t> slots;
    bool cancelled = false;  // the coordinator asked for the stop
    bool fenced = false;     // stopped because the lease lapsed
    bool cuda = false;       // its slots are GPUs, whose health it reports
    int64_t last_step = 0;   // of the trainer's latest metric point
    std::unique_ptr<TrainerProcess> process;
  };
  // One attempt's GPUs to sample.
  struct GpuTarget {
    std::string job_id;
    uint64_t attempt_id;
    std::vector<uint32_t> slots;
    int64_t step;
  };

  void RunConnection();  // the connection thread
  void RunSender();      // the sender thread
  void RunLeaseWatch();  // the lease thread
  // One stream, from connect to its end. True when the stream was healthy, which resets the
  // backoff: the coordinator said something on it, or it stayed open for max_backoff.
  bool Converse();
  v1::WorkerMessage Hello();
  // Writes on the stream numbered `generation`; false when it is gone or the write failed.
  bool Write(const v1::WorkerMessage& message, uint64_t generation);
  // Picks the sender's next message: a heartbeat when due, the drain, then the outbox.
  std::optional<v1::WorkerMessage> NextMessage(absl::Time& next_heartbeat)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::WorkerMessage Heartbeat() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The attempts whose GPUs are due a sample; empty when none are, or there is no monitor.
  std::vector<GpuTarget> GpuTargets(absl::Time& next_sample) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Samples the targets' GPUs (without the lock: NVML may take milliseconds) and queues the
  // points as their attempts' reports.
  void ReportGpus(const std::vector<GpuTarget>& targets) ABSL_LOCKS_EXCLUDED(mu_);
  // The attempts whose logs the shipper follows: those running and those whose end is not
  // acknowledged yet; empty until the stream is welcomed.
  std::vector<LogShipper::Target> LogTargets() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the tails due on stream `generation` (file reads: without the lock).
  void ShipLogs(const std::vector<LogShipper::Target>& targets, uint64_t generation)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Hands `report` to the batcher, and what leaves it to the outbox.
  void Report(v1::WorkerMessage report) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `hello_at`: when the hello it answers was written.
  void HandleWelcome(const v1::Welcome& welcome, absl::Time hello_at);
  void HandleAck(const v1::Ack& ack) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleHeartbeatReply(const v1::HeartbeatReply& reply) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The lease was renewed from `before`: says so when a fence had stopped trainers meanwhile.
  void LeaseRenewed(absl::Time before) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops every running trainer not yet fenced (lease.h), and logs the fence.
  void Fence(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // How long the coordinator has answered nothing, when that is past FenceAt(); else nullopt.
  std::optional<absl::Duration> Lapsed(absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  void HandleAssign(const v1::Assignment& assignment);
  void HandleCancel(const v1::CancelAttempt& cancel);
  void OnTrainerExit(v1::AttemptEnded ended);
  absl::StatusOr<std::vector<v1::Slot>> PickSlots(const v1::Assignment& assignment)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // How an assignment that started no trainer ends (AttemptEnded).
  enum class Refusal {
    kInterrupted,  // the worker stops or is cut off: the job is retried, uncounted
    kStartFailed,  // the worker cannot start trainers: as kInterrupted, and start_failed
    kPermanent,    // every worker would refuse it: the job fails with the reason
  };
  void Refuse(const v1::Assignment& assignment, const std::string& reason,
              Refusal refusal = Refusal::kInterrupted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SessionOptions options_;

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;       // Shutdown() began: no new attempts
  bool closing_ ABSL_GUARDED_BY(mu_) = false;        // the threads are to finish
  bool connected_ ABSL_GUARDED_BY(mu_) = false;      // a stream is open and its hello written
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;     // the open stream's number
  bool welcomed_ ABSL_GUARDED_BY(mu_) = false;       // its welcome arrived: reports may go out
  bool ever_welcomed_ ABSL_GUARDED_BY(mu_) = false;  // some stream was welcomed since Start()
  absl::Status refused_ ABSL_GUARDED_BY(mu_);        // the coordinator refused the credentials
  // Why the last trainer start failed (Refusal::kStartFailed); empty once one started.
  std::string start_failure_ ABSL_GUARDED_BY(mu_);
  // When the coordinator began refusing hellos as duplicates of another stream's id.
  std::optional<absl::Time> duplicate_since_ ABSL_GUARDED_BY(mu_);
  bool drain_sent_ ABSL_GUARDED_BY(mu_) = false;  // the drain was written on it
  bool acks_seen_ ABSL_GUARDED_BY(mu_) = false;   // the coordinator acknowledges reports
  bool writing_ ABSL_GUARDED_BY(mu_) = false;     // the sender holds a message to write
  // The outbox counters as last logged.
  uint64_t logged_spilled_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t logged_dropped_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_);
  uint64_t heartbeats_ ABSL_GUARDED_BY(mu_) = 0;  // the last Heartbeat.number sent
  Lease lease_ ABSL_GUARDED_BY(mu_);
  bool fenced_ ABSL_GUARDED_BY(mu_) = false;  // a fence stopped trainers since the last renewal
  ReportBatcher batcher_ ABSL_GUARDED_BY(mu_);
  Outbox outbox_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Running> running_ ABSL_GUARDED_BY(mu_);  // by attempt id
  // Attempts that ended and whose attempt_ended is not acknowledged yet, by attempt id.
  std::map<uint64_t, v1::RunningAttempt> reporting_ ABSL_GUARDED_BY(mu_);
  std::set<uint32_t> busy_slots_ ABSL_GUARDED_BY(mu_);  // slot indices
  std::vector<std::unique_ptr<TrainerProcess>> ended_ ABSL_GUARDED_BY(mu_);
  // Rank 0's log of each attempt in reporting_ that started a trainer.
  std::map<uint64_t, std::filesystem::path> ended_logs_ ABSL_GUARDED_BY(mu_);
  // The current call's context, so that Shutdown() can cancel a stream that will not close.
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;

  // Serializes writes on the stream; never held together with mu_.
  absl::Mutex stream_mu_;
  Stream* stream_ ABSL_GUARDED_BY(stream_mu_) = nullptr;
  uint64_t stream_generation_ ABSL_GUARDED_BY(stream_mu_) = 0;

  LogShipper log_shipper_;  // only on the sender thread

  std::thread connection_thread_;
  std::thread sender_thread_;
  std::thread lease_thread_;
};

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_SESSION_H_
