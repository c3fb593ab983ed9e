#include "worker/report_batcher.h"

#include <algorithm>
#include <utility>

namespace ablate::worker {
namespace {

bool IsMetrics(const v1::WorkerMessage& report) {
  return report.has_job_event() && report.job_event().event().has_metrics();
}

uint64_t AttemptOf(const v1::WorkerMessage& report) {
  if (report.has_job_event()) return report.job_event().attempt_id();
  return report.attempt_ended().attempt_id();
}

}  // namespace

std::vector<v1::WorkerMessage> ReportBatcher::Add(v1::WorkerMessage report, absl::Time now) {
  std::vector<v1::WorkerMessage> ready;
  if (!report.has_job_event() && !report.has_attempt_ended()) {
    ready.push_back(std::move(report));
    return ready;
  }
  const uint64_t attempt_id = AttemptOf(report);
  auto open = open_.find(attempt_id);
  if (!IsMetrics(report)) {
    // The points produced before it go first (invariant 2).
    if (open != open_.end()) {
      ready.push_back(std::move(open->second.message));
      open_.erase(open);
    }
    ready.push_back(std::move(report));
    return ready;
  }
  const size_t points = static_cast<size_t>(report.job_event().event().metrics().points_size());
  if (open != open_.end() && open->second.points + points > options_.max_points) {
    ready.push_back(std::move(open->second.message));
    open_.erase(open);
    open = open_.end();
  }
  if (open == open_.end()) {
    if (points >= options_.max_points) {
      ready.push_back(std::move(report));
      return ready;
    }
    open_.emplace(attempt_id, Batch{std::move(report), points, now + options_.max_delay});
    return ready;
  }
  // Moved point by point: a MetricPoint's move swaps its name instead of copying it.
  auto* into = open->second.message.mutable_job_event()->mutable_event()->mutable_metrics();
  auto* from = report.mutable_job_event()->mutable_event()->mutable_metrics()->mutable_points();
  into->mutable_points()->Reserve(into->points_size() + from->size());
  for (v1::MetricPoint& point : *from) *into->add_points() = std::move(point);
  open->second.points += points;
  return ready;
}

std::vector<v1::WorkerMessage> ReportBatcher::TakeDue(absl::Time now) {
  std::vector<v1::WorkerMessage> ready;
  for (auto it = open_.begin(); it != open_.end();) {
    if (it->second.due > now) {
      ++it;
      continue;
    }
    ready.push_back(std::move(it->second.message));
    it = open_.erase(it);
  }
  return ready;
}

absl::Time ReportBatcher::NextDue() const {
  absl::Time due = absl::InfiniteFuture();
  for (const auto& [attempt_id, batch] : open_) due = std::min(due, batch.due);
  return due;
}

}  // namespace ablate::worker
