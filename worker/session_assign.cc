// How a Session takes an assignment: the slots it names (or free ones), the trainer started
// on them, or the assignment refused with the kind of refusal that tells the coordinator what
// to do with the job and with this worker (session.h).
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/slot_need.h"
#include "worker/session.h"

namespace ablate::worker {

void Session::HandleAssign(const v1::Assignment& assignment) {
  const std::string& job_id = assignment.job().job_id();
  const uint64_t attempt_id = assignment.attempt_id();
  // Held while the trainer starts, so that its callbacks find it registered.
  absl::MutexLock lock(&mu_);
  if (stopping_) return Refuse(assignment, "the worker is shutting down");
  if (std::optional<absl::Duration> silent = Lapsed(absl::Now()); silent.has_value()) {
    return Refuse(assignment,
                  absl::StrCat("the coordinator answered nothing for ",
                               absl::FormatDuration(absl::Trunc(*silent, absl::Milliseconds(100))),
                               ", over half its lease"));
  }
  if (running_.contains(attempt_id) || reporting_.contains(attempt_id)) {
    ABLATE_LOG(INFO) << "ignoring repeated assignment job_id=" << job_id
                     << " attempt_id=" << attempt_id;
    return;
  }
  if (absl::Status allowed = CheckJobPaths(assignment.job(), options_.roots); !allowed.ok()) {
    return Refuse(assignment, std::string(allowed.message()), Refusal::kPermanent);
  }
  // The coordinator's view of the slots differs from the worker's: it is to back off too,
  // rather than assign the same slot again at once.
  absl::StatusOr<std::vector<v1::Slot>> slots = PickSlots(assignment);
  if (!slots.ok()) {
    return Refuse(assignment, std::string(slots.status().message()), Refusal::kStartFailed);
  }
  absl::StatusOr<std::unique_ptr<TrainerProcess>> process = TrainerProcess::Start(
      options_.trainer, assignment.job(), attempt_id, *slots,
      [this, job_id, attempt_id](const v1::TrainerEvent& event) {
        v1::WorkerMessage message;
        v1::JobEvent& job_event = *message.mutable_job_event();
        job_event.set_job_id(job_id);
        job_event.set_attempt_id(attempt_id);
        *job_event.mutable_event() = event;
        absl::MutexLock lock(&mu_);
        if (auto running = running_.find(attempt_id); running != running_.end()) {
          for (const v1::MetricPoint& point : event.metrics().points()) {
            running->second.last_step = std::max(running->second.last_step, point.step());
          }
        }
        Report(std::move(message));
      },
      [this](const v1::AttemptEnded& ended) { OnTrainerExit(ended); });
  if (!process.ok()) {
    // A job id that names no folder is refused by every worker; the rest is this worker's.
    return Refuse(
        assignment, std::string(process.status().message()),
        absl::IsInvalidArgument(process.status()) ? Refusal::kPermanent : Refusal::kStartFailed);
  }
  if (!start_failure_.empty()) {
    ABLATE_LOG(INFO) << "trainers start again after a failed start job_id=" << job_id
                     << " attempt_id=" << attempt_id;
    start_failure_.clear();
  }

  Running& running = running_[attempt_id];
  running.job_id = job_id;
  for (const v1::Slot& slot : *slots) {
    running.slots.push_back(slot.index());
    running.cuda = running.cuda || slot.kind() == v1::DEVICE_KIND_CUDA;
    busy_slots_.insert(slot.index());
  }
  running.process = *std::move(process);
  ABLATE_LOG(INFO) << "attempt started job_id=" << job_id << " attempt_id=" << attempt_id
                   << " slots=" << absl::StrJoin(running.slots, ",");
}

absl::StatusOr<std::vector<v1::Slot>> Session::PickSlots(const v1::Assignment& assignment) {
  std::vector<v1::Slot> picked;
  if (assignment.slot_indices().empty()) {
    const uint32_t wanted = SlotNeedOf(assignment.job()).count;
    for (const v1::Slot& slot : options_.info.slots()) {
      if (picked.size() < wanted && !busy_slots_.contains(slot.index())) picked.push_back(slot);
    }
    if (picked.size() < wanted) {
      return absl::ResourceExhaustedError(absl::StrCat("no free slot: the job needs ", wanted,
                                                       " and ", picked.size(), " of ",
                                                       options_.info.slots_size(), " are free"));
    }
    return picked;
  }
  for (const uint32_t index : assignment.slot_indices()) {
    auto slot = std::find_if(options_.info.slots().begin(), options_.info.slots().end(),
                             [index](const v1::Slot& s) { return s.index() == index; });
    if (slot == options_.info.slots().end()) {
      return absl::InvalidArgumentError(absl::StrCat("slot ", index, " does not exist"));
    }
    if (std::any_of(picked.begin(), picked.end(),
                    [index](const v1::Slot& s) { return s.index() == index; })) {
      return absl::InvalidArgumentError(absl::StrCat("slot ", index, " is named twice"));
    }
    if (busy_slots_.contains(index)) {
      return absl::ResourceExhaustedError(absl::StrCat("no free slot: slot ", index, " is busy"));
    }
    picked.push_back(*slot);
  }
  return picked;
}

void Session::Refuse(const v1::Assignment& assignment, const std::string& reason, Refusal refusal) {
  ABLATE_LOG(WARNING) << "assignment refused job_id=" << assignment.job().job_id()
                      << " attempt_id=" << assignment.attempt_id() << " reason=\"" << reason << "\""
                      << (refusal == Refusal::kStartFailed ? " start_failed=1" : "");
  v1::WorkerMessage message;
  v1::AttemptEnded& ended = *message.mutable_attempt_ended();
  ended.set_job_id(assignment.job().job_id());
  ended.set_attempt_id(assignment.attempt_id());
  ended.set_succeeded(false);
  // Interrupted attempts are retried elsewhere; a permanent refusal fails the job, since every
  // attempt would be refused the same way.
  ended.set_interrupted(refusal != Refusal::kPermanent);
  ended.set_start_failed(refusal == Refusal::kStartFailed);
  ended.set_never_started(true);
  if (refusal == Refusal::kStartFailed) start_failure_ = reason;
  ended.mutable_exit()->set_reason(absl::StrCat("not started: ", reason));
  Report(std::move(message));
  v1::RunningAttempt& reporting = reporting_[assignment.attempt_id()];
  reporting.set_job_id(assignment.job().job_id());
  reporting.set_attempt_id(assignment.attempt_id());
}

}  // namespace ablate::worker
