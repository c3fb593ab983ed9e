#include "coordinator/scheduler/scheduler.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "coordinator/scheduler/attempt_policy.h"
#include "coordinator/scheduler/worker_roots.h"

namespace ablate::coordinator {
namespace {

bool IsActive(v1::JobState state) {
  return state == v1::JOB_STATE_ASSIGNED || state == v1::JOB_STATE_RUNNING;
}

}  // namespace

Scheduler::Scheduler(Store& store, Clock& clock, SchedulerOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

Scheduler::~Scheduler() { Stop(); }

absl::Status Scheduler::Start() {
  absl::StatusOr<std::vector<v1::Sweep>> sweeps = store_.ListSweeps();
  if (!sweeps.ok()) return sweeps.status();
  absl::StatusOr<std::vector<v1::Job>> pending =
      store_.PendingJobs(std::numeric_limits<int>::max());
  if (!pending.ok()) return pending.status();
  absl::Time now = clock_.Now();
  int restored = 0;
  {
    absl::MutexLock lock(&mu_);
    // ListSweeps is newest first; the queue breaks ties by the order sweeps join it.
    for (const v1::Job& job : *pending) queue_.Add(job.spec());
    for (auto sweep = sweeps->rbegin(); sweep != sweeps->rend(); ++sweep) {
      if (sweep->state() != v1::SWEEP_STATE_ACTIVE) continue;
      absl::StatusOr<std::vector<v1::Job>> jobs = store_.ListJobs(sweep->id());
      if (!jobs.ok()) return jobs.status();
      for (const v1::Job& job : *jobs) {
        if (!IsActive(job.state())) continue;
        WorkerState& worker = workers_[job.worker_id()];
        if (worker.info.worker_id().empty()) {
          worker.info.set_worker_id(job.worker_id());
          worker.disconnected_at = now;
        }
        AddPlacement(worker, {job.spec(), job.current_attempt_id(), {}});
        ++restored;
      }
    }
    messages_dirty_ = true;
  }
  ABLATE_LOG(INFO) << "scheduler started pending=" << pending->size()
                   << " restored_attempts=" << restored
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

void Scheduler::JobsQueued(std::vector<v1::JobSpec> jobs) {
  PendingQueue::Staged staged(jobs);
  staged.Take(std::move(jobs));
  JobsQueued(std::move(staged));
}

void Scheduler::JobsQueued(PendingQueue::Staged staged) {
  absl::MutexLock lock(&mu_);
  queue_.Splice(std::move(staged));
  kicked_ = true;
  messages_dirty_ = true;
}

void Scheduler::AddPlacement(WorkerState& worker, Placement placement) {
  if (!placement.spec.sweep_id().empty()) queue_.CountPlaced(placement.spec);
  worker.placements.push_back(std::move(placement));
}

absl::Status Scheduler::AddWorker(const v1::WorkerInfo& info, std::shared_ptr<WorkerLink> link) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = store_.UpsertWorker(info, /*connected=*/true); !s.ok()) return s;
  WorkerState& worker = workers_[info.worker_id()];
  std::vector<Placement> previous = std::move(worker.placements);
  worker.placements.clear();
  for (const Placement& p : previous) queue_.CountUnplaced(p.spec.sweep_id());
  worker.info = info;
  worker.link = std::move(link);
  worker.received = worker.link->Received();
  worker.last_heard = clock_.Now();
  worker.draining = false;
  if (worker.backoff.backing_off()) {
    worker.backoff.Reconnected();
  } else {
    worker.backoff = StartBackoff(options_.start_backoff);
  }
  worker.busy.clear();
  for (const v1::Slot& slot : info.slots()) worker.busy[slot.index()] = false;
  worker.pinned = 0;
  // The slots the worker says its attempts occupy are taken first, so that no attempt it does
  // not say this of (an older worker's) is given one of them.
  for (const v1::RunningAttempt& running : info.running()) {
    for (uint32_t s : running.slot_indices()) {
      if (auto it = worker.busy.find(s); it != worker.busy.end()) it->second = true;
    }
  }
  worker.free = static_cast<uint32_t>(std::count_if(worker.busy.begin(), worker.busy.end(),
                                                    [](const auto& s) { return !s.second; }));

  std::vector<std::pair<std::string, uint64_t>> back;  // current attempts it still runs
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
    bool taken = false;  // by TakeSlots, which counts the attempt's pinned memory itself
    bool known_slots_free = known != previous.end() && !known->slots.empty() &&
                            std::all_of(known->slots.begin(), known->slots.end(), [&](uint32_t s) {
                              auto it = worker.busy.find(s);
                              return it != worker.busy.end() && !it->second;
                            });
    if (slots.empty() && known_slots_free) {
      slots = known->slots;
      for (uint32_t s : slots) worker.busy[s] = true;
      worker.free -= static_cast<uint32_t>(slots.size());
    } else if (slots.empty() && job.ok()) {
      slots = TakeSlots(worker, SlotNeedOf(job->spec()), /*reseat=*/true);
      taken = !slots.empty();
    }
    v1::JobSpec spec;
    if (job.ok()) {
      spec = job->spec();
    } else {
      spec.set_job_id(running.job_id());
    }
    // The pinned memory of an attempt that holds slots, counted against the worker's offer.
    if (!slots.empty() && !taken) worker.pinned += PinnedBytesOf(SlotNeedOf(spec));
    AddPlacement(worker, {std::move(spec), running.attempt_id(), slots});
    if (known != previous.end()) previous.erase(known);
    if (!current) {
      SendCancel(worker, running.job_id(), running.attempt_id(), "attempt is no longer current",
                 /*stale=*/true);
    } else {
      back.emplace_back(running.job_id(), running.attempt_id());
    }
  }
  for (Placement& gone : previous) {
    std::string why =
        absl::StrCat("worker ", info.worker_id(), " restarted (it came back without attempt ",
                     gone.attempt_id, ", whose trainer was lost with it)");
    if (!EndLost(gone.spec.job_id(), gone.attempt_id, why).ok()) {
      // The store failed: keep the attempt, holding no slot, so the next lease expiry of this
      // worker tries again.
      gone.slots.clear();
      AddPlacement(worker, std::move(gone));
    }
  }
  // RemoveWorker's word on their jobs no longer holds.
  if (!back.empty()) SetAttemptMessages(back, "");
  kicked_ = true;
  messages_dirty_ = true;
  ABLATE_LOG(INFO) << "worker connected worker_id=" << info.worker_id()
                   << " slots=" << info.slots_size() << " running=" << info.running_size();
  return absl::OkStatus();
}

void Scheduler::RemoveWorker(const std::string& worker_id, const WorkerLink* link) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second.link.get() != link) return;
  RecordDisconnected(it->second, clock_.Now());
  ABLATE_LOG(INFO) << "worker disconnected worker_id=" << worker_id
                   << " placed_attempts=" << it->second.placements.size();
  NoteDisconnected(it->second);
}

void Scheduler::AttemptEnded(const std::string& worker_id, uint64_t attempt_id,
                             v1::JobState job_state,
                             const std::optional<std::string>& start_failure) {
  absl::MutexLock lock(&mu_);
  kicked_ = true;
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  std::vector<Placement>& placements = it->second.placements;
  auto placement = std::find_if(placements.begin(), placements.end(),
                                [&](const Placement& p) { return p.attempt_id == attempt_id; });
  // Not placed there (any more): a resent report, whose failure was counted the first time.
  if (placement == placements.end()) return;
  NoteStart(it->second, attempt_id, start_failure);
  FreeSlots(it->second, placement->slots, placement->spec);
  queue_.CountUnplaced(placement->spec.sweep_id());
  if (job_state == v1::JOB_STATE_PENDING && !placement->spec.sweep_id().empty()) {
    queue_.Add(placement->spec);
    messages_dirty_ = true;
  }
  placements.erase(placement);
}

void Scheduler::DrainWorker(const std::string& worker_id, const WorkerLink* link,
                            const std::string& reason) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second.link.get() != link) return;
  it->second.draining = true;
  messages_dirty_ = true;
  ABLATE_LOG(INFO) << "worker draining worker_id=" << worker_id
                   << " placed_attempts=" << it->second.placements.size() << " reason=\"" << reason
                   << "\"";
}

void Scheduler::StopAttempts(const std::vector<v1::Job>& jobs, const std::string& reason) {
  absl::MutexLock lock(&mu_);
  for (const v1::Job& job : jobs) {
    queue_.Remove(job.spec().job_id());
    if (!IsActive(job.state())) continue;
    auto it = workers_.find(job.worker_id());
    // A disconnected worker is told when it reconnects: the attempt is then no longer current.
    if (it == workers_.end() || it->second.link == nullptr) continue;
    SendCancel(it->second, job.spec().job_id(), job.current_attempt_id(), reason);
  }
  kicked_ = true;
}

bool Scheduler::Woken() const { return kicked_ || stopping_; }

void Scheduler::Run() {
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.AwaitWithTimeout(absl::Condition(this, &Scheduler::Woken), options_.tick);
    if (stopping_) return;
    kicked_ = false;
    ExpireLeases();
    while (PlaceBatch()) {
    }
    if (messages_dirty_) StoreWaitingMessages();
  }
}

void Scheduler::ExpireLeases() {
  absl::Time now = clock_.Now();
  for (auto it = workers_.begin(); it != workers_.end();) {
    WorkerState& worker = it->second;
    if (worker.link != nullptr) {
      if (uint64_t received = worker.link->Received(); received != worker.received) {
        worker.received = received;
        worker.last_heard = now;
      }
      if (now - worker.last_heard < options_.lease_timeout) {
        ++it;
        continue;
      }
      // An open stream that carries nothing holds no lease: the worker is treated as gone
      // since it last spoke.
      std::string why = absl::StrCat("no message from worker ", it->first, " for ",
                                     absl::FormatDuration(now - worker.last_heard));
      ABLATE_LOG(WARNING) << "worker silent, stream closed worker_id=" << it->first
                          << " placed_attempts=" << worker.placements.size();
      worker.link->Close(why);
      RecordDisconnected(worker, worker.last_heard);
    }
    if (now - worker.disconnected_at < options_.lease_timeout) {
      ++it;
      continue;
    }
    it = TakeBack(it, absl::StrCat("worker ", it->first, " lost"));
  }
}

void Scheduler::LoseWorker(const std::string& worker_id, const std::string& reason) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  WorkerState& worker = it->second;
  ABLATE_LOG(WARNING) << "worker lost worker_id=" << worker_id
                      << " placed_attempts=" << worker.placements.size() << " reason=\"" << reason
                      << "\"";
  // It will not be back, so it holds no lease: an attempt whose loss the store fails to record
  // now is tried again on the next round, as after a lease expiry.
  const absl::Time gone = clock_.Now() - options_.lease_timeout;
  if (worker.link != nullptr) {
    worker.link->Close(reason);
    RecordDisconnected(worker, gone);
  } else {
    worker.disconnected_at = gone;
  }
  TakeBack(it, absl::StrCat("worker ", worker_id, " lost: ", reason));
  kicked_ = true;
}

void Scheduler::RecordDisconnected(WorkerState& worker, absl::Time since) {
  worker.link = nullptr;
  worker.disconnected_at = since;
  messages_dirty_ = true;
  if (absl::Status s = store_.UpsertWorker(worker.info, /*connected=*/false); !s.ok()) {
    ABLATE_LOG(ERROR) << "worker disconnection not recorded worker_id=" << worker.info.worker_id()
                      << " error=\"" << s.message() << "\"";
  }
}

Scheduler::Workers::iterator Scheduler::TakeBack(Workers::iterator it, const std::string& why) {
  WorkerState& worker = it->second;
  std::vector<Placement> kept;
  for (Placement& p : worker.placements) {
    queue_.CountUnplaced(p.spec.sweep_id());
    if (!EndLost(p.spec.job_id(), p.attempt_id, why).ok()) kept.push_back(std::move(p));
  }
  worker.placements.clear();
  for (Placement& p : kept) AddPlacement(worker, std::move(p));
  return worker.placements.empty() ? workers_.erase(it) : std::next(it);
}

bool Scheduler::Placeable(const WorkerState& worker) {
  return worker.link != nullptr && !worker.draining;
}

bool Scheduler::PlaceBatch() {
  const absl::Time now = clock_.Now();
  auto takes_work = [now](const WorkerState& worker) {
    return Placeable(worker) && worker.backoff.MayPlace(now);
  };
  bool any_free = std::any_of(workers_.begin(), workers_.end(), [&](const auto& entry) {
    return takes_work(entry.second) && entry.second.free > 0;
  });
  if (!any_free || queue_.size() == 0) return false;

  std::vector<Decision> decisions;
  queue_.Place(
      [&](const v1::JobSpec& spec, const SlotNeed& need) {
        const RootedPaths paths = RootedPathsOf(spec);
        for (auto& [id, worker] : workers_) {
          if (!takes_work(worker) || worker.free < need.count) continue;
          // The worker would refuse it, and the job would come back to be placed again.
          if (!RootsHold(worker.info, paths)) continue;
          std::vector<uint32_t> slots = TakeSlots(worker, need);
          if (slots.empty()) continue;
          worker.backoff.Placing();
          decisions.push_back({&worker, spec, std::move(slots)});
          return true;
        }
        return false;
      },
      options_.assign_batch);
  if (decisions.empty()) return false;

  std::vector<AttemptStart> starts;
  starts.reserve(decisions.size());
  for (const Decision& d : decisions) {
    starts.push_back({d.spec.job_id(), d.worker->info.worker_id()});
  }
  absl::StatusOr<std::vector<v1::Attempt>> attempts = store_.StartAttempts(starts);
  if (!attempts.ok()) {
    // Nothing started: every job goes back to the queue and the next tick tries again.
    ABLATE_LOG(ERROR) << "attempts not started jobs=" << decisions.size() << " error=\""
                      << attempts.status().message() << "\"";
    for (Decision& d : decisions) {
      FreeSlots(*d.worker, d.slots, d.spec);
      d.worker->backoff.Placed(0);
      queue_.CountUnplaced(d.spec.sweep_id());
      queue_.Add(d.spec);
    }
    return false;
  }
  for (size_t i = 0; i < decisions.size(); ++i) {
    Decision& d = decisions[i];
    const v1::Attempt& attempt = attempts->at(i);
    d.worker->backoff.Placed(attempt.id());
    if (attempt.id() == 0) {
      // Cancelled since it was queued: it leaves the queue for good.
      FreeSlots(*d.worker, d.slots, d.spec);
      queue_.CountUnplaced(d.spec.sweep_id());
      ABLATE_LOG(INFO) << "attempt not started, job no longer pending job_id=" << d.spec.job_id();
      continue;
    }
    v1::CoordinatorMessage message;
    v1::Assignment* assign = message.mutable_assign();
    assign->set_attempt_id(attempt.id());
    *assign->mutable_job() = d.spec;
    assign->mutable_slot_indices()->Add(d.slots.begin(), d.slots.end());
    if (!d.worker->link->Send(message)) {
      ABLATE_LOG(WARNING) << "worker link closed, assignment dropped job_id=" << d.spec.job_id()
                          << " worker_id=" << d.worker->info.worker_id();
    }
    ABLATE_LOG(INFO) << "job assigned job_id=" << d.spec.job_id() << " attempt_id=" << attempt.id()
                     << " worker_id=" << d.worker->info.worker_id()
                     << " slots=" << absl::StrJoin(d.slots, ",");
    d.worker->placements.push_back({std::move(d.spec), attempt.id(), std::move(d.slots)});
  }
  return static_cast<int>(decisions.size()) == options_.assign_batch;
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
  if (status.ok() && options_.attempt_lost) options_.attempt_lost(job_id, attempt_id);
  if (status.ok() && outcome.job_state == v1::JOB_STATE_PENDING) {
    queue_.Add(job->spec());
    messages_dirty_ = true;
    kicked_ = true;
  }
  ABLATE_LOG(WARNING) << "attempt lost job_id=" << job_id << " attempt_id=" << attempt_id
                      << " job_state=" << v1::JobState_Name(outcome.job_state) << " why=\"" << why
                      << "\"";
  return absl::OkStatus();
}

std::vector<uint32_t> Scheduler::TakeSlots(WorkerState& worker, const SlotNeed& need, bool reseat) {
  std::vector<uint32_t> slots;
  for (const v1::Slot& slot : worker.info.slots()) {
    if (slots.size() == need.count) break;
    if (SlotFits(slot, need) && !worker.busy[slot.index()]) slots.push_back(slot.index());
  }
  if (slots.size() < need.count) return {};
  const uint64_t offer = worker.info.pinned_memory_bytes();  // 0: unknown, no limit
  if (!reseat && offer > 0) {
    const uint64_t pinned = HostPinned(worker);
    if (PinnedBytesOf(need) > offer - std::min(offer, pinned)) return {};
  }
  for (uint32_t s : slots) worker.busy[s] = true;
  worker.free -= static_cast<uint32_t>(slots.size());
  worker.pinned += PinnedBytesOf(need);
  return slots;
}

uint64_t Scheduler::HostPinned(const WorkerState& worker) const {
  if (worker.info.hostname().empty()) return worker.pinned;
  uint64_t pinned = 0;
  for (const auto& [id, other] : workers_) {
    if (other.info.hostname() == worker.info.hostname()) pinned += other.pinned;
  }
  return pinned;
}

void Scheduler::FreeSlots(WorkerState& worker, const std::vector<uint32_t>& slots,
                          const v1::JobSpec& spec) {
  if (!slots.empty()) worker.pinned -= std::min(worker.pinned, PinnedBytesOf(SlotNeedOf(spec)));
  for (uint32_t s : slots) {
    auto it = worker.busy.find(s);
    if (it != worker.busy.end() && it->second) {
      it->second = false;
      ++worker.free;
    }
  }
}

void Scheduler::SendCancel(const WorkerState& worker, const std::string& job_id,
                           uint64_t attempt_id, const std::string& reason, bool stale) {
  v1::CoordinatorMessage message;
  v1::CancelAttempt* cancel = message.mutable_cancel();
  cancel->set_job_id(job_id);
  cancel->set_attempt_id(attempt_id);
  cancel->set_reason(reason);
  cancel->set_stale(stale);
  if (!worker.link->Send(message)) {
    ABLATE_LOG(WARNING) << "worker link closed, cancel dropped job_id=" << job_id
                        << " attempt_id=" << attempt_id;
  }
  ABLATE_LOG(INFO) << "attempt cancel sent job_id=" << job_id << " attempt_id=" << attempt_id
                   << " worker_id=" << worker.info.worker_id() << " reason=\"" << reason << "\"";
}

}  // namespace ablate::coordinator
