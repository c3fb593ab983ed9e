// The WorkerManager is the logic behind WorkerService's streams (WorkerStream only moves
// messages): it records workers with the scheduler, turns their reports into store changes,
// and acknowledges what is committed.
//
// Protocol, as the worker sees it:
//  1. hello: refused with ALREADY_EXISTS while another stream of the same worker id is open, so
//     a second stream never takes a connected worker's place (or its jobs); else the worker
//     is recorded as connected and gets a Welcome (the scheduler's lease, a heartbeat interval
//     of at most a sixth of it and, per attempt it lists, what is already committed), then
//     assignments. A hello the store cannot record ends the stream with the store's error.
//  2. job_event.started -> the attempt RUNNING; metrics -> stored; finished -> kept for the
//     attempt's end; checkpoint and log -> logged. attempt_ended -> the attempt ends as
//     attempt_policy.h decides, with the final eval loss of AttemptEnded.finished (or of a
//     finished event seen before on any stream), its log tail is stored (LogTails::Ended),
//     and its slots are free (one that says start_failed makes the scheduler back off from
//     the worker; a started lets it take work again: scheduler.h); started keeps the
//     trainer's provenance with the job. After each report is committed (or refused as
//     stale: resending it would change nothing) an Ack(attempt, sequence) is queued to the
//     worker; a report the store failed to write is not acked, so the worker sends it again
//     after it reconnects, and the store stores a resend once.
//  3. log_tail: kept in LogTails (in memory, unacknowledged; stored when its attempt ends),
//     when the stream's worker holds the attempt. heartbeat: the worker's event counters go to
//     telemetry (the lease follows every message, see Scheduler). drain: no new assignments.
//  4. When the stream ends, the worker is recorded as disconnected and its lease clock starts.
// Reports for an attempt that is no longer current (the store refuses them) are logged and
// dropped: a late worker never changes a job that moved on, and never loses its stream.
// Reports for the current attempt of a job held by another worker are dropped unstored and
// unacknowledged (logged as refused): a worker speaks only for the attempts it was given.
//
// No store or scheduler call runs in a gRPC reaction: the reactions queue messages to the
// manager's one thread, which handles them in arrival order (the order of each stream's
// messages is kept). Reports go to the store's asynchronous, group-committed writes; their
// WriteDone queues the Ack and lets the stream read on, so a stream has at most
// WorkerStreamOptions::read_ahead reports waiting for a commit.
//
// Thread safety: the StreamHandler methods may be called from any thread and never block;
// Stop() from the owner, after the gRPC server stopped.
#ifndef ABLATE_COORDINATOR_SERVICE_WORKER_MANAGER_H_
#define ABLATE_COORDINATOR_SERVICE_WORKER_MANAGER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "ablate/v1/worker.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/api/log_tails.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/service/worker_stream.h"
#include "coordinator/store/store.h"
#include "coordinator/telemetry/telemetry.h"

namespace ablate::coordinator {

class WorkerManager final : public StreamHandler {
 public:
  // Everything borrowed must outlive the manager; a null `log_tails` drops the workers'
  // log tails. Starts its thread.
  WorkerManager(Store& store, Scheduler& scheduler, Telemetry& telemetry,
                uint32_t heartbeat_interval_ms, LogTails* log_tails = nullptr);
  ~WorkerManager() override;  // Stop()s
  WorkerManager(const WorkerManager&) = delete;
  WorkerManager& operator=(const WorkerManager&) = delete;

  // Runs what is queued, then joins the thread; work queued later is dropped. Idempotent.
  void Stop();

  void OnHello(std::shared_ptr<WorkerStream> stream, v1::WorkerInfo hello) override;
  void OnMessage(std::shared_ptr<WorkerStream> stream, v1::WorkerMessage message) override;
  void OnEnded(std::shared_ptr<WorkerStream> stream) override;

 private:
  void Post(std::function<void()> work);
  void Run();

  // On the manager's thread.
  void Hello(const std::shared_ptr<WorkerStream>& stream, const v1::WorkerInfo& hello);
  // Both may move what they store out of the message (a report's points).
  void Handle(const std::shared_ptr<WorkerStream>& stream, v1::WorkerMessage& message);
  void HandleJobEvent(const std::shared_ptr<WorkerStream>& stream, v1::JobEvent& event);
  // Says so on the job when `report`'s attempt started from `resumed_from_step`, behind a
  // checkpoint an earlier attempt saved.
  void NoteStartBehindCheckpoint(const ReportKey& report, const std::string& worker_id,
                                 int64_t resumed_from_step);
  void HandleAttemptEnded(const std::shared_ptr<WorkerStream>& stream,
                          const v1::AttemptEnded& ended);
  // False when `attempt_id` is the current attempt of `job_id` and `stream`'s worker does not
  // hold it (logged). Attempts that are not current pass: the store refuses their reports.
  bool MayReport(const WorkerStream& stream, const std::string& job_id, uint64_t attempt_id,
                 const char* kind);
  // The WriteDone of `report`: logs a refusal, queues the Ack of (attempt, sequence) when the
  // report needs no resending, calls `then` (may be null) with whether it was stored, and
  // lets the stream read on. Runs on the store's writer thread: must not block.
  WriteDone Acknowledge(std::shared_ptr<WorkerStream> stream, ReportKey report, const char* kind,
                        std::function<void(bool)> then);

  // Constant after construction.
  Store& store_;
  Scheduler& scheduler_;
  Telemetry& telemetry_;
  const uint32_t heartbeat_interval_ms_;
  LogTails* const log_tails_;

  absl::Mutex mu_;
  std::deque<std::function<void()>> work_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool exited_ ABSL_GUARDED_BY(mu_) = false;  // the thread ran out of work after Stop()

  // Only on the manager's thread: trainer finished events by attempt id, for workers whose
  // AttemptEnded does not carry one, until the attempt's end.
  absl::flat_hash_map<uint64_t, v1::TrainerFinished> finished_;
  // Only on the manager's thread: the stream each connected worker said hello on, by id.
  absl::flat_hash_map<std::string, const WorkerStream*> connected_;
  // Only on the manager's thread: current attempts by id, with their job and the worker holding
  // them, as the store said when first asked (an attempt never changes hands).
  struct Holder {
    std::string job_id;
    std::string worker_id;
  };
  absl::flat_hash_map<uint64_t, Holder> holders_;
  // Only on the manager's thread: the newest checkpoint each job's trainers reported, so that
  // an attempt that starts behind it (its worker does not see that checkpoint_dir) is said on
  // the job rather than silently run again from there.
  struct Checkpointed {
    int64_t step = 0;
    uint64_t attempt_id = 0;
    std::string worker_id;
  };
  absl::flat_hash_map<std::string, Checkpointed> checkpoints_;

  std::thread thread_;  // last: started when everything above is ready
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SERVICE_WORKER_MANAGER_H_
