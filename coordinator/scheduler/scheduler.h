// The Scheduler owns placement: which connected worker has which free slots, which attempt
// runs on which slots, and when a worker that went away has been gone long enough for its jobs
// to be taken back.
//
// On every Kick() and at least once per `tick`, its thread
//  1. ends the attempts of workers disconnected for longer than `lease_timeout` as LOST (the
//     job is queued again while attempts remain, else FAILED "worker <id> lost");
//  2. assigns PENDING jobs (Store::PendingJobs: oldest sweep first) to connected workers with
//     enough free slots of the right kind: a job takes max(1, config.gpus) slots, CUDA slots
//     when gpus > 0, else CPU slots. Store::StartAttempt first, then an Assignment on the
//     worker's link. A job no worker can ever take stays PENDING;
//  3. sends, in the order they were decided, every message queued for workers (assignments
//     and cancels). Only this thread writes to links, so a cancel never overtakes the
//     assignment it cancels.
//
// The store holds the truth; the scheduler's view is rebuilt from it by Start() after a
// restart: attempts that were ASSIGNED or RUNNING belong to workers counted as disconnected
// since the start, so they are kept when their worker reconnects listing them in hello.running
// and leased out otherwise. A reconnecting worker says which slots each attempt occupies
// (RunningAttempt.slot_indices); only for workers that do not, the scheduler picks the slots
// it remembers, or else the lowest free ones of the right kind.
//
// A draining worker (DrainWorker) is given no new attempt until it says hello on a new stream;
// the attempts it holds stay placed and end as usual.
//
// Thread safety: every public method may be called from any thread. Store calls are made with
// the scheduler's mutex held; the store never calls back, so no lock order can invert. Links
// are written only by the scheduler's thread and never with the mutex held.
#ifndef ABLATE_COORDINATOR_SCHEDULER_SCHEDULER_H_
#define ABLATE_COORDINATOR_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
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
#include "coordinator/store/store.h"

namespace ablate::coordinator {

// Where messages for one connected worker go: its stream, in production a WorkerSession.
class WorkerLink {
 public:
  virtual ~WorkerLink() = default;
  // Sends one message. False when the link has closed; the message is then dropped, and the
  // lease takes back whatever it would have started.
  virtual bool Send(const v1::CoordinatorMessage& message) = 0;
};

struct SchedulerOptions {
  // How long a worker may stay disconnected before its attempts are declared LOST.
  absl::Duration lease_timeout = absl::Seconds(30);
  // The longest the thread sleeps without a Kick(); bounds how late a lease is noticed.
  absl::Duration tick = absl::Seconds(1);
  // How many pending jobs one round looks at.
  int pending_batch = 1000;
};

// What one connected worker holds, for ListWorkers.
struct WorkerLoad {
  uint32_t free_slots = 0;  // slots a new attempt could take: none while the worker drains
  std::vector<std::string> job_ids;
};

class Scheduler {
 public:
  // `store` and `clock` must outlive the scheduler.
  Scheduler(Store& store, Clock& clock, SchedulerOptions options);
  ~Scheduler();  // Stop()s
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Rebuilds the view of running attempts from the store, then starts the thread. Returns the
  // store's error when it cannot be read; the thread is then not started.
  absl::Status Start();
  // Stops and joins the thread. Queued messages not yet sent are dropped. Idempotent.
  void Stop();

  // Asks for a round soon: a sweep was submitted, a job was cancelled.
  void Kick();

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

  // The worker reported the end of `attempt_id` (whatever the store made of the report):
  // its slots are free again.
  void AttemptEnded(const std::string& worker_id, uint64_t attempt_id);

  // The worker behind `link` said it takes no new assignments (it is shutting down): no attempt
  // is placed on it until it connects again through AddWorker. Its placed attempts are kept.
  // Nothing changes when `link` is not the worker's current link.
  void DrainWorker(const std::string& worker_id, const WorkerLink* link, const std::string& reason);

  // Tells the workers of `jobs` (as Store::CancelJobs returned them, before the change) that
  // were ASSIGNED or RUNNING to stop their current attempt.
  void StopAttempts(const std::vector<v1::Job>& jobs, const std::string& reason);

  // Free slots and placed jobs of each connected worker, by worker id.
  absl::flat_hash_map<std::string, WorkerLoad> Loads() const;

 private:
  struct Placement {
    std::string job_id;
    uint64_t attempt_id = 0;
    std::vector<uint32_t> slots;  // Slot.index values; empty when not yet known
  };
  struct WorkerState {
    v1::WorkerInfo info;
    std::shared_ptr<WorkerLink> link;  // null while disconnected
    absl::Time disconnected_at;        // meaningful while link is null
    bool draining = false;             // takes no new attempt until its next AddWorker
    std::map<uint32_t, bool> busy;     // Slot.index -> taken
    std::vector<Placement> placements;
  };
  struct Outgoing {
    std::shared_ptr<WorkerLink> link;
    v1::CoordinatorMessage message;
  };

  void Run();
  bool Woken() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ExpireLeases() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PlacePending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Flush() ABSL_LOCKS_EXCLUDED(mu_);

  // Ends `attempt_id` of `job_id` as LOST when it is still the job's current attempt. OK also
  // when there was nothing to end; the store's error when it could not record the loss.
  absl::Status EndLost(const std::string& job_id, uint64_t attempt_id, const std::string& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes `count` free slots of `kind` on `worker`; empty when it has too few.
  static std::vector<uint32_t> TakeSlots(WorkerState& worker, v1::DeviceKind kind, uint32_t count);
  static void FreeSlots(WorkerState& worker, const std::vector<uint32_t>& slots);
  void QueueCancel(const WorkerState& worker, const std::string& job_id, uint64_t attempt_id,
                   const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  Store& store_;
  Clock& clock_;
  const SchedulerOptions options_;

  mutable absl::Mutex mu_;
  std::map<std::string, WorkerState> workers_ ABSL_GUARDED_BY(mu_);  // ordered: stable placement
  std::deque<Outgoing> outbox_ ABSL_GUARDED_BY(mu_);
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread thread_;  // started by Start(), joined by Stop()
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SCHEDULER_SCHEDULER_H_
