#include "coordinator/api/tuning_driver.h"

#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/job_state.h"
#include "common/log.h"
#include "coordinator/api/sweep_api.h"
#include "sweep/tuning.h"

namespace ablate::coordinator {

TuningDriver::TuningDriver(Store& store, Scheduler& scheduler, ChangeFeed& feed,
                           TuningDriverOptions options)
    : store_(store),
      scheduler_(scheduler),
      feed_(feed),
      options_(options),
      wake_(std::make_shared<Wake>()) {}

TuningDriver::~TuningDriver() { Stop(); }

absl::Status TuningDriver::Start() {
  absl::StatusOr<std::vector<v1::Sweep>> sweeps = store_.ListSweeps();
  if (!sweeps.ok()) return sweeps.status();
  for (const v1::Sweep& sweep : *sweeps) {
    if (sweep.spec().has_tuning()) Watch(sweep.id());
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void TuningDriver::Stop() {
  {
    absl::MutexLock lock(&wake_->mu);
    wake_->stopping = true;
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  watched_.clear();
}

void TuningDriver::Watch(const std::string& sweep_id) {
  {
    absl::MutexLock lock(&mu_);
    Watched& watched = watched_[sweep_id];
    ++watched.watches;
    if (watched.subscription == nullptr) {
      // Subscribed before the forced step reads the jobs, so no change falls between them.
      watched.subscription = feed_.Subscribe(sweep_id);
      watched.subscription->SetNotify([wake = wake_, sweep_id] {
        absl::MutexLock lock(&wake->mu);
        wake->changed.insert(sweep_id);
      });
    }
  }
  absl::MutexLock lock(&wake_->mu);
  wake_->forced.insert(sweep_id);
}

bool TuningDriver::JobEnded(ChangeFeed::Subscription& subscription) {
  bool ended = false;
  ChangeFeed::Delta delta;
  while (true) {
    switch (subscription.Next(&delta, absl::ZeroDuration())) {
      case ChangeFeed::Subscription::Result::kDelta:
        for (const v1::Job& job : delta->jobs()) ended = ended || JobStateHasEnded(job.state());
        break;
      case ChangeFeed::Subscription::Result::kFellBehind:
        ended = true;  // what was lost may have ended a job
        break;
      case ChangeFeed::Subscription::Result::kTimeout:
      case ChangeFeed::Subscription::Result::kClosed:
        return ended;
    }
  }
}

void TuningDriver::Run() {
  absl::flat_hash_set<std::string> retry;  // sweeps whose last step failed
  while (true) {
    absl::flat_hash_set<std::string> changed;
    absl::flat_hash_set<std::string> forced;
    {
      Wake& wake = *wake_;
      absl::MutexLock lock(&wake.mu);
      auto ready = [&wake]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(wake.mu) {
        return wake.stopping || !wake.changed.empty() || !wake.forced.empty();
      };
      wake.mu.AwaitWithTimeout(absl::Condition(&ready),
                               retry.empty() ? absl::InfiniteDuration() : options_.retry);
      if (wake.stopping) return;
      changed.swap(wake.changed);
      forced.swap(wake.forced);
    }
    forced.insert(retry.begin(), retry.end());
    retry.clear();
    changed.insert(forced.begin(), forced.end());
    for (const std::string& sweep_id : changed) {
      ChangeFeed::Subscription* subscription = nullptr;
      uint64_t watches = 0;
      {
        absl::MutexLock lock(&mu_);
        auto it = watched_.find(sweep_id);
        if (it == watched_.end()) continue;
        subscription = it->second.subscription.get();  // only this thread removes it
        watches = it->second.watches;
      }
      if (!JobEnded(*subscription) && !forced.contains(sweep_id)) continue;
      absl::StatusOr<bool> done = Step(sweep_id);
      if (!done.ok()) {
        ABLATE_LOG(WARNING) << "tuning: step failed sweep_id=" << sweep_id << " error=\""
                            << done.status().message() << "\"";
        retry.insert(sweep_id);
      } else if (*done) {
        absl::MutexLock lock(&mu_);
        auto it = watched_.find(sweep_id);
        if (it != watched_.end() && it->second.watches == watches) watched_.erase(it);
      }
    }
  }
}

absl::StatusOr<bool> TuningDriver::Step(const std::string& sweep_id) {
  absl::StatusOr<v1::Sweep> sweep = store_.GetSweep(sweep_id);
  if (!sweep.ok()) return sweep.status();
  absl::StatusOr<std::vector<v1::Job>> jobs = store_.ListJobs(sweep_id);
  if (!jobs.ok()) return jobs.status();
  sweep::TuningStep step = sweep::NextTuningJobs(sweep->spec(), *jobs);
  if (step.add.empty() && step.revive.empty()) return step.done;
  const absl::flat_hash_set<std::string> revive(step.revive.begin(), step.revive.end());
  std::vector<std::string> dropped;
  for (const v1::Job& job : *jobs) {
    if (job.dropped() && !revive.contains(job.spec().job_id())) {
      dropped.push_back(job.spec().job_id());
    }
  }
  if (absl::Status added =
          store_.AddJobs(*sweep, step.add, dropped, SweepApi::MaxAttemptsOf(sweep->spec()));
      !added.ok()) {
    return added;
  }
  scheduler_.JobsQueued(step.add);
  scheduler_.JobsQueued(TakenBack(*jobs, revive));
  for (const std::string& job_id : step.revive) {
    ABLATE_LOG(INFO) << "tuning kept job_id=" << job_id
                     << " (dropped by an update, and its result is needed again)";
  }
  for (const v1::JobSpec& job : step.add) {
    if (job.has_tuned()) {
      ABLATE_LOG(INFO) << "tuning chose job_id=" << job.job_id()
                       << " learning_rate=" << job.tuned().learning_rate()
                       << " weight_decay=" << job.tuned().weight_decay()
                       << " trial=" << job.tuned().trial_job_id();
    } else {
      ABLATE_LOG(INFO) << "tuning promoted job_id=" << job.job_id()
                       << " rung=" << job.trial().rung() << " steps=" << job.config().steps();
    }
  }
  return step.done;
}

}  // namespace ablate::coordinator
