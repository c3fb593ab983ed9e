// How a Session's attempts stop other than by finishing: the coordinator's cancel, the fence
// when the lease lapses (lease.h), and, whatever stopped it, the trainer's exit (session.h).
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "worker/session.h"

namespace ablate::worker {
namespace {

// What a log line or a reason says of a silence: tenths of seconds are enough.
std::string Round(absl::Duration d) {
  return absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(100)));
}

}  // namespace

void Session::HandleCancel(const v1::CancelAttempt& cancel) {
  absl::MutexLock lock(&mu_);
  auto it = running_.find(cancel.attempt_id());
  if (it == running_.end() || it->second.job_id != cancel.job_id()) {
    ABLATE_LOG(INFO) << "ignoring cancel of an attempt not running job_id=" << cancel.job_id()
                     << " attempt_id=" << cancel.attempt_id();
    return;
  }
  ABLATE_LOG(INFO) << "cancelling job_id=" << cancel.job_id()
                   << " attempt_id=" << cancel.attempt_id() << " reason=\"" << cancel.reason()
                   << "\"";
  it->second.cancelled = true;
  // A stale attempt's checkpoint would land beside the current one's: SIGKILL without grace.
  it->second.process->Stop(
      cancel.stale() ? absl::ZeroDuration() : options_.stop_grace,
      cancel.reason().empty() ? "cancelled" : absl::StrCat("cancelled: ", cancel.reason()));
}

void Session::RunLeaseWatch() {
  absl::MutexLock lock(&mu_);
  while (!closing_) {
    const absl::Time fence_at = lease_.FenceAt();
    const bool lapsed = absl::Now() >= fence_at;
    if (lapsed) Fence(absl::Now());
    // Wakes when the lease moves (a renewal, a new lease) or, unless it has lapsed (then no
    // trainer starts until it is renewed: HandleAssign), when it lapses.
    auto moved = [this, fence_at]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return closing_ || lease_.FenceAt() != fence_at;
    };
    mu_.AwaitWithDeadline(absl::Condition(&moved), lapsed ? absl::InfiniteFuture() : fence_at);
  }
}

std::optional<absl::Duration> Session::Lapsed(absl::Time now) const {
  if (now < lease_.FenceAt()) return std::nullopt;
  return now - lease_.renewed();
}

void Session::Fence(absl::Time now) {
  const std::optional<absl::Duration> silent = Lapsed(now);
  if (!silent.has_value()) return;
  // SIGKILL by KillBy(), which may be sooner than stop_grace: a trainer still checkpointing
  // then loses that checkpoint only, the ones already written stay.
  const absl::Duration grace =
      absl::Trunc(std::clamp(lease_.KillBy() - now, absl::ZeroDuration(),
                             std::max(options_.stop_grace, absl::ZeroDuration())),
                  absl::Milliseconds(1));
  const std::string reason =
      absl::StrCat("fenced: the coordinator answered nothing for ", Round(*silent),
                   ", over half its lease of ", Round(lease_.duration()),
                   ", so the worker stopped the trainer before the job could run elsewhere");
  std::vector<std::string> jobs;
  std::vector<uint64_t> attempts;
  for (auto& [attempt_id, running] : running_) {
    if (running.fenced) continue;
    running.fenced = true;
    running.process->Stop(grace, reason);
    jobs.push_back(running.job_id);
    attempts.push_back(attempt_id);
  }
  if (jobs.empty()) return;
  fenced_ = true;
  ABLATE_LOG(WARNING) << "fencing: cut off from the coordinator past half its lease, stopping "
                      << "trainers before their jobs can be given to another worker jobs="
                      << absl::StrJoin(jobs, ",") << " attempt_ids=" << absl::StrJoin(attempts, ",")
                      << " cut_off_for=" << Round(*silent) << " lease=" << Round(lease_.duration())
                      << " sigkill_after=" << Round(grace);
}

void Session::HandleHeartbeatReply(const v1::HeartbeatReply& reply) {
  const absl::Time before = lease_.renewed();
  lease_.Answered(reply.number());
  LeaseRenewed(before);
}

void Session::LeaseRenewed(absl::Time before) {
  if (!fenced_ || Lapsed(absl::Now()).has_value()) return;
  fenced_ = false;
  ABLATE_LOG(INFO) << "the coordinator answers again after a fence cut_off_for="
                   << Round(absl::Now() - before);
}

void Session::OnTrainerExit(v1::AttemptEnded ended) {
  absl::MutexLock lock(&mu_);
  auto it = running_.find(ended.attempt_id());
  if (it != running_.end()) {
    ended.set_cancelled(it->second.cancelled);
    // Stopped by the worker, not by the job: the coordinator requeues it uncounted, or has
    // already ended the attempt LOST at its lease's end and drops this report as stale.
    ended.set_interrupted((stopping_ || it->second.fenced) && !it->second.cancelled);
    for (const uint32_t slot : it->second.slots) busy_slots_.erase(slot);
    v1::RunningAttempt& reporting = reporting_[ended.attempt_id()];
    reporting.set_job_id(it->second.job_id);
    reporting.set_attempt_id(ended.attempt_id());
    reporting.mutable_slot_indices()->Add(it->second.slots.begin(), it->second.slots.end());
    ended_logs_[ended.attempt_id()] = it->second.process->log();
    ended_.push_back(std::move(it->second.process));
    running_.erase(it);
  }
  v1::WorkerMessage message;
  *message.mutable_attempt_ended() = std::move(ended);
  Report(std::move(message));
}

}  // namespace ablate::worker
