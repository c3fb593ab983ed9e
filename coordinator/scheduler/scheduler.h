// The Scheduler owns placement: which connected worker has which free slots, which attempt
// runs on which slots, which jobs wait (a PendingQueue in memory), and when a worker that went
// away, or fell silent, has been gone long enough for its jobs to be taken back.
//
// On every Kick() (a notification: jobs queued, an attempt ended, a worker came) and at least
// once per `tick`, its thread
//  1. takes back the assignments of workers whose lease ran out: a worker's lease runs from the
//     last message it sent (heartbeats included), so one whose stream stays open but that
//     sends nothing loses its attempts after one lease, exactly as one that disconnected; its
//     stream is closed. Its attempts end LOST (the job is queued again, to resume from its last
//     checkpoint, while attempts remain, else FAILED "worker <id> lost");
//  2. places queued jobs in the PendingQueue's order (priority, then fairly across sweeps,
//     never starving a job that fits) on connected workers' free slots that fit their need
//     (common/slot_need.h: kind, count, memory, and pinned host memory, which a worker offers
//     in all: the pinned bytes of the attempts on its host, by every worker of its hostname,
//     are counted against WorkerInfo.pinned_memory_bytes),
//     of workers whose reported roots hold the job's absolute checkpoint_dir and dataset
//     (worker_roots.h; a worker refuses a job outside its roots, which would only come back to
//     the queue), up to `assign_batch` per commit: one Store::StartAttempts for the batch, then
//     each Assignment is queued on its worker's link;
//  3. stores, for jobs that no connected worker could ever take, why they wait, as the job's
//     message ("waiting: needs 1 CUDA slot with 80 GB; connected workers have 2 CPU slots",
//     "waiting: dataset /d/set is outside every connected worker's --data-root (w1: /data)"),
//     and clears it once a worker that fits connects.
//
// The store holds the truth; the scheduler's view is rebuilt from it by Start() after a
// restart: the pending queue from Store::PendingJobs, and attempts that were ASSIGNED or
// RUNNING belong to workers counted as disconnected since the start, so they are kept when
// their worker reconnects listing them in hello.running and leased out otherwise. A
// reconnecting worker says which slots each attempt occupies (RunningAttempt.slot_indices);
// only for workers that do not, the scheduler picks the slots it remembers, or else the lowest
// free ones that fit.
//
// A worker that cannot come back (LoseWorker: its token was revoked) is not waited for: its
// attempts are taken back at once, as at the end of its lease.
//
// A draining worker (DrainWorker) is given no new attempt until it says hello on a new stream;
// the attempts it holds stay placed and end as usual.
//
// A worker whose trainers fail to start (AttemptEnded.start_failed, reported to AttemptEnded)
// backs off as start_backoff.h says: it rests, then gets one attempt, and takes work as before
// once a trainer started there (AttemptStarted). Meanwhile its jobs go to other workers, or
// wait. A rest's end is noticed within a `tick`.
//
// Thread safety: every public method may be called from any thread, but most write to the
// store and so block for a commit: call them from a thread that may block (never a gRPC
// reaction). Store calls are made with the scheduler's mutex held; the store never calls back,
// so no lock order can invert. WorkerLink::Send only queues (it never waits for a worker), so
// it is called under the mutex too, which keeps a cancel behind the assignment it cancels and
// one stalled worker from holding up placement for the others.
#ifndef ABLATE_COORDINATOR_SCHEDULER_SCHEDULER_H_
#define ABLATE_COORDINATOR_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/worker.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/slot_need.h"
#include "coordinator/scheduler/pending_queue.h"
#include "coordinator/scheduler/start_backoff.h"
#include "coordinator/scheduler/worker_roots.h"
#include "coordinator/store/store.h"

namespace ablate::coordinator {

// Where messages for one connected worker go: its stream, in production a WorkerStream.
// Implementations must be safe to call from any thread and must not call the scheduler.
class WorkerLink {
 public:
  virtual ~WorkerLink() = default;
  // Queues one message for the worker and returns at once, without waiting for the network.
  // False when the link has closed; the message is then dropped, and the lease takes back
  // whatever it would have started.
  virtual bool Send(const v1::CoordinatorMessage& message) = 0;
  // How many messages the worker sent on this link so far (heartbeats included); the lease
  // runs from the last time this grew.
  virtual uint64_t Received() const = 0;
  // Ends the stream with UNAVAILABLE and `reason`; Send() fails from then on.
  virtual void Close(const std::string& reason) = 0;
};

struct SchedulerOptions {
  // How long a worker may stay disconnected, or silent on an open stream, before its attempts
  // are declared LOST.
  absl::Duration lease_timeout = absl::Seconds(30);
  // The longest the thread sleeps without a Kick(); bounds how late a lease is noticed.
  absl::Duration tick = absl::Seconds(1);
  // The most attempts started in one store commit.
  int assign_batch = 1000;
  // When set, called with each attempt the scheduler ended LOST (a lease ran out, a worker was
  // lost, a reconnecting worker no longer listed it), after the store committed the end. It
  // runs with the scheduler's mutex held: it must not call the scheduler, nor block.
  std::function<void(const std::string& job_id, uint64_t attempt_id)> attempt_lost;
  // How long a worker whose trainers failed to start rests (start_backoff.h).
  StartBackoffOptions start_backoff;
};

// What one connected worker holds, for ListWorkers.
struct WorkerLoad {
  // Slots a new attempt could take: none while the worker drains or rests after failed starts.
  uint32_t free_slots = 0;
  std::vector<std::string> job_ids;
  std::optional<v1::WorkerBackoff> backoff;  // while it backs off from failed starts
};

class Scheduler {
 public:
  // `store` and `clock` must outlive the scheduler.
  Scheduler(Store& store, Clock& clock, SchedulerOptions options);
  ~Scheduler();  // Stop()s
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Rebuilds the pending queue and the view of running attempts from the store, then starts
  // the thread. Returns the store's error when it cannot be read; the thread is then not
  // started.
  absl::Status Start();
  // Stops and joins the thread. Idempotent.
  void Stop();

  // Asks for a round soon.
  void Kick();

  // SchedulerOptions::lease_timeout, which workers are told so that they stop their trainers
  // before it runs out (worker/lease.h).
  absl::Duration lease_timeout() const { return options_.lease_timeout; }

  // `jobs` were stored as PENDING (a sweep was submitted): they join the pending queue, moved
  // there rather than copied (a sweep may hold 100,000).
  void JobsQueued(std::vector<v1::JobSpec> jobs);
  // The same for jobs staged while they were being stored (PendingQueue::Staged): only the
  // splice runs under the scheduler's lock.
  void JobsQueued(PendingQueue::Staged staged);

  // A worker connected (or reconnected) with `info`: it is recorded as connected in the store
  // and its messages go to `link` from now on, replacing any earlier link of the same worker.
  // Attempts in info.running that are still current stay placed on it; those that are not are
  // told to stop (their slots stay taken until the worker reports their end); attempts the
  // scheduler had placed on it that it does not list are ended as LOST at once. Returns the
  // store's error, and registers nothing, when the worker cannot be recorded.
  absl::Status AddWorker(const v1::WorkerInfo& info, std::shared_ptr<WorkerLink> link);

  // The stream behind `link` ended. When `link` is the worker's current link, the worker is
  // recorded as disconnected and its lease clock starts; when a newer connection replaced it,
  // nothing changes. Connection records are written under the scheduler's lock, so a quick
  // reconnect never ends up recorded as disconnected.
  void RemoveWorker(const std::string& worker_id, const WorkerLink* link);

  // The worker will not be back (its token was revoked): what the end of its lease would do,
  // done now. Its link, if open, is closed with `reason` and it is recorded as disconnected; its
  // attempts end LOST with "worker <id> lost: <reason>" (the job is queued again while attempts
  // remain, else FAILED with that message), and the worker is forgotten. An attempt whose loss
  // the store cannot record stays placed and is tried again on the next round. Nothing changes
  // for a worker the scheduler does not know. Writes to the store, so it blocks for commits.
  void LoseWorker(const std::string& worker_id, const std::string& reason);

  // The worker reported the end of `attempt_id`, and the store left its job in `job_state`
  // (UNSPECIFIED when the report was refused): its slots are free again, and a job back in
  // PENDING joins the queue. `start_failure`, when set, is the worker's reason that the
  // attempt's trainer did not start there (AttemptEnded.start_failed): the worker backs off.
  void AttemptEnded(const std::string& worker_id, uint64_t attempt_id, v1::JobState job_state,
                    const std::optional<std::string>& start_failure = std::nullopt);

  // The trainer of `attempt_id` said it started on the worker: one that backs off from failed
  // starts takes work again, when the attempt was placed after its last failed start.
  void AttemptStarted(const std::string& worker_id, uint64_t attempt_id);

  // The worker behind `link` said it takes no new assignments (it is shutting down): no attempt
  // is placed on it until it connects again through AddWorker. Its placed attempts are kept.
  // Nothing changes when `link` is not the worker's current link.
  void DrainWorker(const std::string& worker_id, const WorkerLink* link, const std::string& reason);

  // `jobs` were cancelled (as Store::CancelJobs returned them, before the change): pending ones
  // leave the queue, and the workers of ASSIGNED or RUNNING ones are told to stop them.
  void StopAttempts(const std::vector<v1::Job>& jobs, const std::string& reason);

  // Free slots, placed jobs and backoff of each connected worker, by worker id.
  absl::flat_hash_map<std::string, WorkerLoad> Loads() const;
  // The ids of the workers it knows that are disconnected: those whose attempts it keeps for
  // their lease (restored by Start() after a restart, or whose stream ended).
  std::vector<std::string> DisconnectedWorkers() const;

 private:
  struct Placement {
    v1::JobSpec spec;  // job_id and sweep_id at least
    uint64_t attempt_id = 0;
    std::vector<uint32_t> slots;  // Slot.index values; empty when not yet known
  };
  struct WorkerState {
    v1::WorkerInfo info;
    std::shared_ptr<WorkerLink> link;  // null while disconnected
    absl::Time disconnected_at;        // meaningful while link is null
    uint64_t received = 0;             // link->Received() when last looked at
    absl::Time last_heard;             // when `received` last grew, or the link was added
    bool draining = false;             // takes no new attempt until its next AddWorker
    StartBackoff backoff;              // after failed starts of its trainers
    std::map<uint32_t, bool> busy;     // Slot.index -> taken
    uint32_t free = 0;                 // slots not taken
    uint64_t pinned = 0;               // pinned host memory the attempts holding slots take
    std::vector<Placement> placements;
  };
  struct Decision {
    WorkerState* worker;
    v1::JobSpec spec;
    std::vector<uint32_t> slots;
  };

  using Workers = std::map<std::string, WorkerState>;  // ordered: stable placement

  void Run();
  bool Woken() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ExpireLeases() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops `worker`'s link (closed or ended already) and records it as disconnected since
  // `since`, when its lease clock starts; a store failure is logged, not returned.
  void RecordDisconnected(WorkerState& worker, absl::Time since) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends each attempt placed on the worker at `it` as LOST for `why` (EndLost) and forgets the
  // worker, unless the store failed to record a loss: that attempt stays placed, for the next
  // try. Returns the iterator to the next worker.
  Workers::iterator TakeBack(Workers::iterator it, const std::string& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Says on the jobs of `worker`'s attempts that it disconnected, and when they are requeued.
  void NoteDisconnected(const WorkerState& worker) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Store::SetAttemptMessages, a failure logged (a message is a courtesy, not state).
  void SetAttemptMessages(const std::vector<std::pair<std::string, uint64_t>>& attempts,
                          const std::string& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One batch of placements; false when nothing more can be placed now.
  bool PlaceBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StoreWaitingMessages() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why a job of `need` and `paths` waits when no connected worker could ever take it; "" when
  // one could.
  std::string WhyWaiting(const SlotNeed& need, const RootedPaths& paths) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  void AddPlacement(WorkerState& worker, Placement placement) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tells `worker`'s backoff how its `attempt_id` ended: its trainer failed to start there for
  // `start_failure`, or (nullopt) it ended otherwise.
  void NoteStart(WorkerState& worker, uint64_t attempt_id,
                 const std::optional<std::string>& start_failure)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends `attempt_id` of `job_id` as LOST when it is still the job's current attempt, queueing
  // the job again when the policy says so. OK also when there was nothing to end; the store's
  // error when it could not record the loss.
  absl::Status EndLost(const std::string& job_id, uint64_t attempt_id, const std::string& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes free slots of `worker` that fit `need`, and the pinned host memory it needs; empty
  // when the worker has too few such slots or, unless `reseat` (an attempt that already runs
  // there, whose memory is pinned whatever the offer says), too little host memory left on its
  // host (HostPinned against the worker's offer).
  std::vector<uint32_t> TakeSlots(WorkerState& worker, const SlotNeed& need, bool reseat = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The pinned host memory taken on `worker`'s host: by every worker of its hostname, since
  // each daemon on a host (one per GPU group, say) offers the same host's memory; a worker
  // without a hostname counts alone.
  uint64_t HostPinned(const WorkerState& worker) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Gives back the slots of an attempt of `spec` and, when it held any, its pinned memory.
  static void FreeSlots(WorkerState& worker, const std::vector<uint32_t>& slots,
                        const v1::JobSpec& spec);
  // Connected and not draining: it takes jobs, now or once its backoff allows.
  static bool Placeable(const WorkerState& worker);
  // CancelAttempt.stale: killed at once rather than stopped after a checkpoint.
  void SendCancel(const WorkerState& worker, const std::string& job_id, uint64_t attempt_id,
                  const std::string& reason, bool stale = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  Store& store_;
  Clock& clock_;
  const SchedulerOptions options_;

  mutable absl::Mutex mu_;
  Workers workers_ ABSL_GUARDED_BY(mu_);
  PendingQueue queue_ ABSL_GUARDED_BY(mu_);
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The fleet or the queue changed since waiting messages were last stored.
  bool messages_dirty_ ABSL_GUARDED_BY(mu_) = true;

  std::thread thread_;  // started by Start(), joined by Stop()
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SCHEDULER_SCHEDULER_H_
