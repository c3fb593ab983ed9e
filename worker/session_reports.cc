// What a Session reports beside its trainers' events: the attempts it runs, in each stream's
// hello; its GPUs' health, sampled for the attempts that run on them; and the tails of its
// attempts' logs (session.h).
#include <utility>

#include "common/log.h"
#include "worker/session.h"

namespace ablate::worker {

v1::WorkerMessage Session::Hello() {
  v1::WorkerMessage message;
  v1::WorkerInfo& hello = *message.mutable_hello();
  hello = options_.info;
  hello.clear_running();
  absl::MutexLock lock(&mu_);
  // A new stream: what the last one carried may not have arrived.
  outbox_.Rewind();
  for (const auto& [attempt_id, running] : running_) {
    v1::RunningAttempt& attempt = *hello.add_running();
    attempt.set_job_id(running.job_id);
    attempt.set_attempt_id(attempt_id);
    attempt.mutable_slot_indices()->Add(running.slots.begin(), running.slots.end());
  }
  for (const auto& [attempt_id, reporting] : reporting_) *hello.add_running() = reporting;
  return message;
}

std::vector<Session::GpuTarget> Session::GpuTargets(absl::Time& next_sample) {
  std::vector<GpuTarget> targets;
  if (options_.gpu_monitor == nullptr || absl::Now() < next_sample) return targets;
  next_sample = absl::Now() + options_.gpu_sample_interval;
  for (const auto& [attempt_id, r] : running_) {
    if (r.cuda) targets.push_back({r.job_id, attempt_id, r.slots, r.last_step});
  }
  return targets;
}

void Session::ReportGpus(const std::vector<GpuTarget>& targets) {
  for (const GpuTarget& target : targets) {
    std::vector<GpuSample> samples;
    for (const uint32_t slot : target.slots) {
      absl::StatusOr<GpuSample> sample = options_.gpu_monitor->Sample(slot);
      if (!sample.ok()) {
        ABLATE_LOG(WARNING) << "cannot read a GPU's health job_id=" << target.job_id
                            << " slot=" << slot << " error=\"" << sample.status().message() << "\"";
        samples.clear();
        break;
      }
      samples.push_back(*sample);
    }
    if (samples.empty()) continue;
    v1::WorkerMessage message;
    v1::JobEvent& job_event = *message.mutable_job_event();
    job_event.set_job_id(target.job_id);
    job_event.set_attempt_id(target.attempt_id);
    const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
    for (v1::MetricPoint& point : GpuMetricPoints(samples, target.step, now)) {
      *job_event.mutable_event()->mutable_metrics()->add_points() = std::move(point);
    }
    absl::MutexLock lock(&mu_);
    // Not after the attempt's end, which must stay its last report.
    if (running_.contains(target.attempt_id)) Report(std::move(message));
  }
}

std::vector<LogShipper::Target> Session::LogTargets() {
  std::vector<LogShipper::Target> targets;
  if (!connected_ || !welcomed_) return targets;
  for (const auto& [attempt_id, running] : running_) {
    targets.push_back({running.job_id, attempt_id, running.process->log(), /*ended=*/false});
  }
  for (const auto& [attempt_id, log] : ended_logs_) {
    targets.push_back({reporting_.at(attempt_id).job_id(), attempt_id, log, /*ended=*/true});
  }
  return targets;
}

void Session::ShipLogs(const std::vector<LogShipper::Target>& targets, uint64_t generation) {
  for (const v1::WorkerMessage& message : log_shipper_.Due(targets, absl::Now(), generation)) {
    if (Write(message, generation)) log_shipper_.Written(message);
  }
}

}  // namespace ablate::worker
