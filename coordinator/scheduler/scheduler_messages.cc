// The words the scheduler leaves on jobs: why pending ones wait, and what befell the worker of
// a running one. Part of Scheduler (scheduler.h).
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/scheduler/waiting_message.h"
#include "coordinator/scheduler/worker_roots.h"

namespace ablate::coordinator {

std::string Scheduler::WhyWaiting(const SlotNeed& need, const RootedPaths& paths) const {
  std::vector<const v1::WorkerInfo*> placeable;
  for (const auto& [id, worker] : workers_) {
    if (Placeable(worker)) placeable.push_back(&worker.info);
  }
  return WaitingMessage(placeable, need, paths);
}

void Scheduler::StoreWaitingMessages() {
  messages_dirty_ = false;
  queue_.ForEachGroup(
      [&](const std::string& sweep_id, const SlotNeed& need, PendingQueue::Group& group) {
        // The jobs of a group fit the same workers, so its first speaks for all.
        std::string why = WhyWaiting(need, RootedPathsOf(group.jobs.begin()->second));
        if (why == group.message && !group.message_stale) return;
        // A message that no longer holds is cleared; one never stored leaves the job's own (why it
        // was retried) in place.
        if (why.empty() && group.message.empty()) {
          group.message_stale = false;
          return;
        }
        std::vector<std::string> job_ids;
        job_ids.reserve(group.jobs.size());
        for (const auto& [index, spec] : group.jobs) job_ids.push_back(spec.job_id());
        if (absl::Status s = store_.SetPendingMessages(job_ids, why); !s.ok()) {
          ABLATE_LOG(ERROR) << "waiting message not stored sweep_id=" << sweep_id << " error=\""
                            << s.message() << "\"";
          messages_dirty_ = true;
          return;
        }
        if (!why.empty()) {
          ABLATE_LOG(INFO) << "jobs cannot be placed sweep_id=" << sweep_id
                           << " jobs=" << job_ids.size() << " why=\"" << why << "\"";
        }
        group.message = std::move(why);
        group.message_stale = false;
      });
}

void Scheduler::NoteDisconnected(const WorkerState& worker) {
  // Its trainers may run on unseen until the lease ends; their jobs would look as RUNNING as
  // ever without a word.
  std::vector<std::pair<std::string, uint64_t>> attempts;
  for (const Placement& p : worker.placements) attempts.emplace_back(p.spec.job_id(), p.attempt_id);
  if (attempts.empty()) return;
  SetAttemptMessages(
      attempts, absl::StrCat("worker ", worker.info.worker_id(), " disconnected at ",
                             absl::FormatTime("%H:%M:%S UTC", clock_.Now(), absl::UTCTimeZone()),
                             "; the job goes back to the queue unless the worker is back within ",
                             absl::FormatDuration(options_.lease_timeout)));
}

void Scheduler::SetAttemptMessages(const std::vector<std::pair<std::string, uint64_t>>& attempts,
                                   const std::string& message) {
  if (absl::Status s = store_.SetAttemptMessages(attempts, message); !s.ok()) {
    ABLATE_LOG(WARNING) << "job messages not recorded jobs=" << attempts.size() << " error=\""
                        << s.message() << "\"";
  }
}

}  // namespace ablate::coordinator
