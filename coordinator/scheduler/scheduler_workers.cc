// What the scheduler says of its workers (their loads, those gone) and what it learns of their
// trainers' starts (StartBackoff). Part of Scheduler (scheduler.h).
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/log.h"
#include "coordinator/scheduler/scheduler.h"

namespace ablate::coordinator {

absl::flat_hash_map<std::string, WorkerLoad> Scheduler::Loads() const {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  absl::flat_hash_map<std::string, WorkerLoad> loads;
  for (const auto& [id, worker] : workers_) {
    if (worker.link == nullptr) continue;
    WorkerLoad& load = loads[id];
    load.free_slots = worker.draining || !worker.backoff.MayPlace(now) ? 0 : worker.free;
    for (const Placement& p : worker.placements) load.job_ids.push_back(p.spec.job_id());
    if (worker.backoff.backing_off()) load.backoff = worker.backoff.ToProto();
  }
  return loads;
}

std::vector<std::string> Scheduler::DisconnectedWorkers() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const auto& [id, worker] : workers_) {
    if (worker.link == nullptr) ids.push_back(id);
  }
  return ids;
}

void Scheduler::NoteStart(WorkerState& worker, uint64_t attempt_id,
                          const std::optional<std::string>& start_failure) {
  if (!start_failure.has_value()) {
    worker.backoff.Ended(attempt_id);
    return;
  }
  worker.backoff.Failed(clock_.Now(), attempt_id, *start_failure);
  ABLATE_LOG(WARNING) << "worker backs off after a failed start worker_id="
                      << worker.info.worker_id() << " attempt_id=" << attempt_id
                      << " failures=" << worker.backoff.failures()
                      << " rest=" << absl::FormatDuration(worker.backoff.rest()) << " reason=\""
                      << *start_failure << "\"";
}

void Scheduler::AttemptStarted(const std::string& worker_id, uint64_t attempt_id) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || !it->second.backoff.Started(attempt_id)) return;
  ABLATE_LOG(INFO) << "worker takes work again, a trainer started worker_id=" << worker_id
                   << " attempt_id=" << attempt_id;
  kicked_ = true;
}

}  // namespace ablate::coordinator
