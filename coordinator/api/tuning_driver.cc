#include "coordinator/api/tuning_driver.h"

#include <utility>
#include <vector>

#include "common/log.h"
#include "coordinator/api/sweep_api.h"
#include "sweep/tuning.h"

namespace ablate::coordinator {

TuningDriver::TuningDriver(Store& store, Scheduler& scheduler, TuningDriverOptions options)
    : store_(store), scheduler_(scheduler), options_(options) {}

TuningDriver::~TuningDriver() { Stop(); }

absl::Status TuningDriver::Start() {
  absl::StatusOr<std::vector<v1::Sweep>> sweeps = store_.ListSweeps();
  if (!sweeps.ok()) return sweeps.status();
  {
    absl::MutexLock lock(&mu_);
    for (const v1::Sweep& sweep : *sweeps) {
      if (sweep.spec().has_tuning()) watched_.try_emplace(sweep.id());
    }
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void TuningDriver::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void TuningDriver::Watch(const std::string& sweep_id) {
  absl::MutexLock lock(&mu_);
  watched_.insert_or_assign(sweep_id, std::nullopt);
}

void TuningDriver::Run() {
  while (true) {
    std::vector<std::pair<std::string, std::optional<Seen>>> sweeps;
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.interval)) return;
      sweeps.assign(watched_.begin(), watched_.end());
    }
    for (const auto& [sweep_id, before] : sweeps) {
      absl::StatusOr<v1::Sweep> sweep = store_.GetSweep(sweep_id);
      if (!sweep.ok()) {
        ABLATE_LOG(WARNING) << "tuning: cannot read sweep_id=" << sweep_id << " error=\""
                            << sweep.status().message() << "\"";
        continue;
      }
      const v1::JobCounts& counts = sweep->counts();
      const Seen now = {counts.succeeded(), counts.failed(), counts.cancelled(), counts.total()};
      if (before == now) continue;
      absl::StatusOr<bool> done = Step(*sweep);
      absl::MutexLock lock(&mu_);
      if (!done.ok()) {
        ABLATE_LOG(WARNING) << "tuning: step failed sweep_id=" << sweep_id << " error=\""
                            << done.status().message() << "\"";
        watched_.insert_or_assign(sweep_id, std::nullopt);  // tried again next round
      } else if (*done) {
        watched_.erase(sweep_id);
      } else if (auto it = watched_.find(sweep_id); it != watched_.end() && it->second == before) {
        it->second = now;  // unless Watch asked for a fresh step meanwhile
      }
    }
  }
}

absl::StatusOr<bool> TuningDriver::Step(const v1::Sweep& sweep) {
  absl::StatusOr<std::vector<v1::Job>> jobs = store_.ListJobs(sweep.id());
  if (!jobs.ok()) return jobs.status();
  sweep::TuningStep step = sweep::NextTuningJobs(sweep.spec(), *jobs);
  if (step.add.empty()) return step.done;
  std::vector<std::string> dropped;
  for (const v1::Job& job : *jobs) {
    if (job.dropped()) dropped.push_back(job.spec().job_id());
  }
  if (absl::Status added =
          store_.AddJobs(sweep, step.add, dropped, SweepApi::MaxAttemptsOf(sweep.spec()));
      !added.ok()) {
    return added;
  }
  scheduler_.JobsQueued(step.add);
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
