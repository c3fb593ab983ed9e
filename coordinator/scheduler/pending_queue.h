// PendingQueue holds the jobs that wait for slots, in memory, and decides the order in which
// placement offers them: the scheduler fills it from the store when it starts and then from
// notifications (a sweep submitted, a job queued again), so a placement round never re-reads
// the pending jobs from the database.
//
// Order (item by item, what Place offers next):
//  1. Higher JobSpec.priority first: no job of a lower priority is offered while one of a
//     higher priority could still be placed in this pass.
//  2. Within a priority, the sweep with the fewest placed jobs first, the older (first queued)
//     sweep on a tie: sweeps share slots fairly, so a one-cell sweep is never stuck behind
//     another sweep's 100,000 cells.
//  3. Within a sweep, expansion order (JobSpec.index); a job queued again keeps its place.
// A job that no worker takes now (its need, common/slot_need.h, fits no free slot or no
// worker's pinned host memory left, or no worker with such slots has roots that hold its paths,
// worker_roots.h) is skipped, and every job of its group with it for the rest of the pass, so a
// job that fits an idle slot is never starved by whatever waits ahead of it. Jobs are grouped
// within each sweep by need and by the paths that limit where they run (the dataset, and the
// checkpoint_dir by the folder a sweep's jobs share), so that the jobs of a group fit the same
// workers, and skipping costs one step per group, not one per job.
//
// Not thread-safe: the scheduler calls it under its own mutex.
#ifndef ABLATE_COORDINATOR_SCHEDULER_PENDING_QUEUE_H_
#define ABLATE_COORDINATOR_SCHEDULER_PENDING_QUEUE_H_

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "common/slot_need.h"

namespace ablate::coordinator {

class PendingQueue {
 public:
  // The jobs of one sweep that share one need and the paths a worker's roots must hold
  // (worker_roots.h; the checkpoint_dir by its folder), in expansion order, and the waiting
  // message the scheduler last stored for them.
  struct Group {
    std::map<uint32_t, v1::JobSpec> jobs;  // by JobSpec.index
    std::string message;                   // "" when none was stored
    bool message_stale = false;            // a job joined after `message` was stored
  };

  class Staged;

  // Queues a PENDING job; a job already queued is left as it is (and `spec` dropped).
  void Add(v1::JobSpec spec);
  // Queues the staged jobs as Add would queue each in turn, by moving what Staged built: a
  // sweep's 100,000 jobs cost a hash each here, not their groups' nodes and index entries.
  void Splice(Staged staged);
  // Takes a queued job out (it was cancelled). False when it was not queued.
  bool Remove(const std::string& job_id);
  bool Contains(const std::string& job_id) const { return where_.contains(job_id); }
  size_t size() const { return where_.size(); }

  // The sweep of `spec` holds one more placed job, or one fewer: the fairness count of rule 2.
  // Place counts the jobs it places itself.
  void CountPlaced(const v1::JobSpec& spec);
  void CountUnplaced(const std::string& sweep_id);

  // Offers queued jobs in the order above to `try_place`, which returns true when it placed
  // the job (the job then leaves the queue and counts as placed) and false when no worker takes
  // it now (its group is skipped for the rest of the pass). Stops after `limit` placements or
  // when nothing is left to offer. Returns the number placed.
  int Place(absl::FunctionRef<bool(const v1::JobSpec&, const SlotNeed&)> try_place, int limit);

  // Calls `visit` for every group of queued jobs (none is empty).
  void ForEachGroup(
      absl::FunctionRef<void(const std::string& sweep_id, const SlotNeed&, Group&)> visit);

 private:
  // kind, count, memory_bytes, host_memory_bytes; then the checkpoint folder and the dataset of
  // RootedPaths (worker_roots.h)
  using GroupKey = std::tuple<int, uint32_t, uint64_t, uint64_t, std::string, std::string>;
  struct Sweep {
    int32_t priority = 0;
    uint64_t order = 0;   // when the sweep was first queued: older sweeps win ties
    uint32_t placed = 0;  // jobs of the sweep now placed on workers
    std::map<GroupKey, Group> groups;
  };
  struct Where {
    std::string sweep_id;
    GroupKey group;
    uint32_t index = 0;
  };

  friend class Staged;
  static GroupKey KeyOf(const v1::JobSpec& spec);
  static SlotNeed NeedOf(const GroupKey& key);
  Sweep& SweepOf(const v1::JobSpec& spec);
  void DropIfIdle(const std::string& sweep_id);

  absl::flat_hash_map<std::string, Sweep> sweeps_;
  absl::flat_hash_map<std::string, Where> where_;  // queued job id -> its place
  uint64_t next_order_ = 0;
};

// Jobs made ready to join a PendingQueue without touching one: the groups and index entries
// Add would make, built where the queue's owner does not hold its lock (SweepApi builds them
// while the store inserts the jobs), then spliced in by PendingQueue::Splice once the jobs are
// stored. Until then none of them can be placed, and dropping it queues nothing.
class PendingQueue::Staged {
 public:
  // Builds the places of `jobs`, reading them only; the jobs themselves join with Take.
  explicit Staged(const std::vector<v1::JobSpec>& jobs);
  // Moves `jobs` into their places: the same jobs, in the same order, as the constructor's.
  void Take(std::vector<v1::JobSpec> jobs);

 private:
  friend class PendingQueue;
  absl::flat_hash_map<std::string, Sweep> sweeps_;  // order: first seen first; placed unset
  std::vector<std::pair<std::string, Where>> where_;
  std::vector<v1::JobSpec*> slots_;  // [i]: where jobs[i] goes, inside sweeps_' groups
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SCHEDULER_PENDING_QUEUE_H_
