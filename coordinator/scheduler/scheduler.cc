#include "coordinator/scheduler/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "coordinator/scheduler/attempt_policy.h"

namespace ablate::coordinator {
namespace {

struct SlotNeed {
  v1::DeviceKind kind;
  uint32_t count;
};

// A CPU job runs on one CPU slot; a GPU job on as many CUDA slots as it asks for.
SlotNeed NeedOf(const v1::JobSpec& spec) {
  uint32_t gpus = spec.config().gpus();
  return {gpus > 0 ? v1::DEVICE_KIND_CUDA : v1::DEVICE_KIND_CPU, std::max(1u, gpus)};
}

bool IsActive(v1::JobState state) {
  return state == v1::JOB_STATE_ASSIGNED || state == v1::JOB_STATE_RUNNING;
}

}  // namespace

Scheduler::Scheduler(Store& store, Clock& clock, SchedulerOptions options)
    : store_(store), clock_(clock), options_(options) {}

Scheduler::~Scheduler() { Stop(); }

absl::Status Scheduler::Start() {
  absl::StatusOr<std::vector<v1::Sweep>> sweeps = store_.ListSweeps();
  if (!sweeps.ok()) return sweeps.status();
  absl::Time now = clock_.Now();
  int restored = 0;
  {
    absl::MutexLock lock(&mu_);
    for (const v1::Sweep& sweep : *sweeps) {
      if (sweep.state() != v1::SWEEP_STATE_ACTIVE) continue;
      absl::StatusOr<std::vector<v1::Job>> jobs = store_.ListJobs(sweep.id());
      if (!jobs.ok()) return jobs.status();
      for (const v1::Job& job : *jobs) {
        if (!IsActive(job.state())) continue;
        WorkerState& worker = workers_[job.worker_id()];
        if (worker.info.worker_id().empty()) {
          worker.info.set_worker_id(job.worker_id());
          worker.disconnected_at = now;
        }
        worker.placements.push_back({job.spec().job_id(), job.current_attempt_id(), {}});
        ++restored;
      }
    }
  }
  ABLATE_LOG(INFO) << "scheduler started restored_attempts=" << restored
                   << " lease_timeout_s=" << absl::ToDoubleSeconds(options_.lease_timeout);
  thread_ = std::thread(&Scheduler::Run, this);
  return absl::OkStatus();
}

void Scheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Scheduler::Kick() {
  absl::MutexLock lock(&mu_);
  kicked_ = true;
}

absl::Status Scheduler::AddWorker(const v1::WorkerInfo& info, std::shared_ptr<WorkerLink> link) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = store_.UpsertWorker(info, /*connected=*/true); !s.ok()) return s;
  WorkerState& worker = workers_[info.worker_id()];
  std::vector<Placement> previous = std::move(worker.placements);
  worker.placements.clear();
  worker.info = info;
  worker.link = std::move(link);
  worker.draining = false;
  worker.busy.clear();
  for (const v1::Slot& slot : info.slots()) worker.busy[slot.index()] = false;
  // The slots the worker says its attempts occupy are taken first, so that no attempt it does
  // not say this of (an older worker's) is given one of them.
  for (const v1::RunningAttempt& running : info.running()) {
    for (uint32_t s : running.slot_indices()) {
      if (auto it = worker.busy.find(s); it != worker.busy.end()) it->second = true;
    }
  }

  for (const v1::RunningAttempt& running : info.running()) {
    absl::StatusOr<v1::Job> job = store_.GetJob(running.job_id());
    bool current = job.ok() && IsActive(job->state()) &&
                   job->current_attempt_id() == running.attempt_id() &&
                   job->worker_id() == info.worker_id();
    auto known = std::find_if(previous.begin(), previous.end(), [&](const Placement& p) {
      return p.attempt_id == running.attempt_id();
    });
    // The trainer still occupies its devices whether or not its attempt is current, so its
    // slots stay taken until the worker reports its end. The slots the worker reports (taken
    // above) win over the ones remembered, which a restart leaves empty.
    std::vector<uint32_t> slots;
    for (uint32_t s : running.slot_indices()) {
      if (worker.busy.contains(s)) slots.push_back(s);
    }
    bool known_slots_free = known != previous.end() && !known->slots.empty() &&
                            std::all_of(known->slots.begin(), known->slots.end(), [&](uint32_t s) {
                              auto it = worker.busy.find(s);
                              return it != worker.busy.end() && !it->second;
                            });
    if (slots.empty() && known_slots_free) {
      slots = known->slots;
      for (uint32_t s : slots) worker.busy[s] = true;
    } else if (slots.empty() && job.ok()) {
      SlotNeed need = NeedOf(job->spec());
      slots = TakeSlots(worker, need.kind, need.count);
    }
    worker.placements.push_back({running.job_id(), running.attempt_id(), slots});
    if (known != previous.end()) previous.erase(known);
    if (!current) {
      QueueCancel(worker, running.job_id(), running.attempt_id(), "attempt is no longer current");
    }
  }
  for (const Placement& gone : previous) {
    std::string why =
        absl::StrCat("worker ", info.worker_id(), " reconnected without attempt ", gone.attempt_id);
    if (!EndLost(gone.job_id, gone.attempt_id, why).ok()) {
      // The store failed: keep the attempt, holding no slot, so the next lease expiry of this
      // worker tries again.
      worker.placements.push_back({gone.job_id, gone.attempt_id, {}});
    }
  }
  kicked_ = true;
  ABLATE_LOG(INFO) << "worker connected worker_id=" << info.worker_id()
                   << " slots=" << info.slots_size() << " running=" << info.running_size();
  return absl::OkStatus();
}

void Scheduler::RemoveWorker(const std::string& worker_id, const WorkerLink* link) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second.link.get() != link) return;
  it->second.link = nullptr;
  it->second.disconnected_at = clock_.Now();
  if (absl::Status s = store_.UpsertWorker(it->second.info, /*connected=*/false); !s.ok()) {
    ABLATE_LOG(ERROR) << "worker disconnection not recorded worker_id=" << worker_id << " error=\""
                      << s.message() << "\"";
  }
  ABLATE_LOG(INFO) << "worker disconnected worker_id=" << worker_id
                   << " placed_attempts=" << it->second.placements.size();
}

void Scheduler::AttemptEnded(const std::string& worker_id, uint64_t attempt_id) {
  absl::MutexLock lock(&mu_);
  kicked_ = true;
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  std::vector<Placement>& placements = it->second.placements;
  auto placement = std::find_if(placements.begin(), placements.end(),
                                [&](const Placement& p) { return p.attempt_id == attempt_id; });
  if (placement == placements.end()) return;
  FreeSlots(it->second, placement->slots);
  placements.erase(placement);
}

void Scheduler::DrainWorker(const std::string& worker_id, const WorkerLink* link,
                            const std::string& reason) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second.link.get() != link) return;
  it->second.draining = true;
  ABLATE_LOG(INFO) << "worker draining worker_id=" << worker_id
                   << " placed_attempts=" << it->second.placements.size() << " reason=\"" << reason
                   << "\"";
}

void Scheduler::StopAttempts(const std::vector<v1::Job>& jobs, const std::string& reason) {
  absl::MutexLock lock(&mu_);
  for (const v1::Job& job : jobs) {
    if (!IsActive(job.state())) continue;
    auto it = workers_.find(job.worker_id());
    // A disconnected worker is told when it reconnects: the attempt is then no longer current.
    if (it == workers_.end() || it->second.link == nullptr) continue;
    QueueCancel(it->second, job.spec().job_id(), job.current_attempt_id(), reason);
  }
  kicked_ = true;
}

absl::flat_hash_map<std::string, WorkerLoad> Scheduler::Loads() const {
  absl::MutexLock lock(&mu_);
  absl::flat_hash_map<std::string, WorkerLoad> loads;
  for (const auto& [id, worker] : workers_) {
    if (worker.link == nullptr) continue;
    WorkerLoad& load = loads[id];
    for (const auto& [index, taken] : worker.busy) {
      load.free_slots += taken || worker.draining ? 0 : 1;
    }
    for (const Placement& p : worker.placements) load.job_ids.push_back(p.job_id);
  }
  return loads;
}

bool Scheduler::Woken() const { return kicked_ || stopping_; }

void Scheduler::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(this, &Scheduler::Woken), options_.tick);
      if (stopping_) return;
      kicked_ = false;
      ExpireLeases();
      PlacePending();
    }
    Flush();
  }
}

void Scheduler::ExpireLeases() {
  absl::Time now = clock_.Now();
  for (auto it = workers_.begin(); it != workers_.end();) {
    WorkerState& worker = it->second;
    if (worker.link != nullptr || now - worker.disconnected_at < options_.lease_timeout) {
      ++it;
      continue;
    }
    std::vector<Placement> kept;
    for (const Placement& p : worker.placements) {
      if (!EndLost(p.job_id, p.attempt_id, absl::StrCat("worker ", it->first, " lost")).ok()) {
        kept.push_back(p);
      }
    }
    worker.placements = std::move(kept);
    it = worker.placements.empty() ? workers_.erase(it) : std::next(it);
  }
}

void Scheduler::PlacePending() {
  bool any_free = std::any_of(workers_.begin(), workers_.end(), [](const auto& entry) {
    const WorkerState& w = entry.second;
    return w.link != nullptr && !w.draining &&
           std::any_of(w.busy.begin(), w.busy.end(), [](const auto& slot) { return !slot.second; });
  });
  if (!any_free) return;
  absl::StatusOr<std::vector<v1::Job>> pending = store_.PendingJobs(options_.pending_batch);
  if (!pending.ok()) {
    ABLATE_LOG(WARNING) << "pending jobs unreadable error=\"" << pending.status().message() << "\"";
    return;
  }
  for (const v1::Job& job : *pending) {
    SlotNeed need = NeedOf(job.spec());
    WorkerState* target = nullptr;
    std::vector<uint32_t> slots;
    for (auto& [id, worker] : workers_) {
      if (worker.link == nullptr || worker.draining) continue;
      slots = TakeSlots(worker, need.kind, need.count);
      if (!slots.empty()) {
        target = &worker;
        break;
      }
    }
    if (target == nullptr) continue;
    const std::string& job_id = job.spec().job_id();
    absl::StatusOr<v1::Attempt> attempt = store_.StartAttempt(job_id, target->info.worker_id());
    if (!attempt.ok()) {
      // Most often the job was cancelled since PendingJobs read it.
      FreeSlots(*target, slots);
      ABLATE_LOG(WARNING) << "attempt not started job_id=" << job_id << " error=\""
                          << attempt.status().message() << "\"";
      continue;
    }
    target->placements.push_back({job_id, attempt->id(), slots});
    v1::CoordinatorMessage message;
    v1::Assignment* assign = message.mutable_assign();
    assign->set_attempt_id(attempt->id());
    *assign->mutable_job() = job.spec();
    assign->mutable_slot_indices()->Add(slots.begin(), slots.end());
    outbox_.push_back({target->link, std::move(message)});
    ABLATE_LOG(INFO) << "job assigned job_id=" << job_id << " attempt_id=" << attempt->id()
                     << " worker_id=" << target->info.worker_id()
                     << " slots=" << absl::StrJoin(slots, ",");
  }
}

void Scheduler::Flush() {
  std::deque<Outgoing> outgoing;
  {
    absl::MutexLock lock(&mu_);
    outgoing.swap(outbox_);
  }
  for (const Outgoing& out : outgoing) {
    if (!out.link->Send(out.message)) {
      ABLATE_LOG(WARNING) << "worker link closed, message dropped kind="
                          << (out.message.has_assign() ? "assign" : "cancel");
    }
  }
}

absl::Status Scheduler::EndLost(const std::string& job_id, uint64_t attempt_id,
                                const std::string& why) {
  absl::StatusOr<v1::Job> job = store_.GetJob(job_id);
  if (!job.ok()) {
    return job.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus() : job.status();
  }
  if (!IsActive(job->state()) || job->current_attempt_id() != attempt_id) return absl::OkStatus();
  AttemptOutcome outcome = OutcomeOfLoss(*job, why);
  v1::ExitStatus exit;
  exit.set_reason(why);
  absl::Status status = store_.EndAttempt(job_id, attempt_id, outcome.attempt_state, exit,
                                          outcome.job_state, outcome.message, std::nullopt);
  // FailedPrecondition: a report ended the attempt since GetJob; nothing is left to do.
  if (!status.ok() && status.code() != absl::StatusCode::kFailedPrecondition) {
    ABLATE_LOG(ERROR) << "lost attempt not recorded job_id=" << job_id
                      << " attempt_id=" << attempt_id << " error=\"" << status.message() << "\"";
    return status;
  }
  ABLATE_LOG(WARNING) << "attempt lost job_id=" << job_id << " attempt_id=" << attempt_id
                      << " job_state=" << v1::JobState_Name(outcome.job_state) << " why=\"" << why
                      << "\"";
  return absl::OkStatus();
}

std::vector<uint32_t> Scheduler::TakeSlots(WorkerState& worker, v1::DeviceKind kind,
                                           uint32_t count) {
  std::vector<uint32_t> slots;
  for (const v1::Slot& slot : worker.info.slots()) {
    if (slots.size() == count) break;
    if (slot.kind() == kind && !worker.busy[slot.index()]) slots.push_back(slot.index());
  }
  if (slots.size() < count) return {};
  for (uint32_t s : slots) worker.busy[s] = true;
  return slots;
}

void Scheduler::FreeSlots(WorkerState& worker, const std::vector<uint32_t>& slots) {
  for (uint32_t s : slots) {
    auto it = worker.busy.find(s);
    if (it != worker.busy.end()) it->second = false;
  }
}

void Scheduler::QueueCancel(const WorkerState& worker, const std::string& job_id,
                            uint64_t attempt_id, const std::string& reason) {
  v1::CoordinatorMessage message;
  v1::CancelAttempt* cancel = message.mutable_cancel();
  cancel->set_job_id(job_id);
  cancel->set_attempt_id(attempt_id);
  cancel->set_reason(reason);
  outbox_.push_back({worker.link, std::move(message)});
  ABLATE_LOG(INFO) << "attempt cancel queued job_id=" << job_id << " attempt_id=" << attempt_id
                   << " worker_id=" << worker.info.worker_id() << " reason=\"" << reason << "\"";
}

}  // namespace ablate::coordinator
