#include "coordinator/store/changes.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/store/rows.h"

namespace ablate::coordinator::internal {
namespace {

constexpr char kTrainLoss[] = "train/loss";
constexpr char kEvalLoss[] = "eval/loss";

}  // namespace

ReportCache::Entry* ReportCache::Find(const std::string& job_id) {
  auto it = entries_.find(job_id);
  return it == entries_.end() ? nullptr : &it->second;
}

ReportCache::Entry& ReportCache::Put(const std::string& job_id, Entry entry) {
  if (entries_.size() >= kMaxEntries) entries_.clear();
  return entries_[job_id] = std::move(entry);
}

Changes::SweepChanges& Changes::Sweep(const std::string& sweep_id) {
  auto [it, inserted] = sweeps_.try_emplace(sweep_id);
  if (inserted) it->second.wanted = feed_ != nullptr && feed_->Wants(sweep_id);
  return it->second;
}

void Changes::Job(int64_t rowid, const std::string& sweep_id) {
  SweepChanges& sweep = Sweep(sweep_id);
  if (sweep.wanted) sweep.jobs.try_emplace(rowid);
}

void Changes::NewSweep(const std::string& sweep_id) {
  Sweep(sweep_id).created = true;
  pending_ = true;
}

void Changes::Progress(int64_t rowid, const std::string& sweep_id, const std::string& job_id,
                       const google::protobuf::RepeatedPtrField<v1::MetricPoint>& points) {
  if (points.empty()) return;
  JobProgress& progress = progress_[rowid];
  int64_t step = points[0].step();
  const v1::MetricPoint* loss = nullptr;
  const v1::MetricPoint* eval_loss = nullptr;
  // The newest point of `name` so far, in `newest`.
  auto keep_newest = [](const v1::MetricPoint& point, const v1::MetricPoint*& newest) {
    if (newest == nullptr || point.step() >= newest->step()) newest = &point;
  };
  for (const v1::MetricPoint& point : points) {
    step = std::max(step, point.step());
    if (point.name() == kTrainLoss) keep_newest(point, loss);
    if (point.name() == kEvalLoss) keep_newest(point, eval_loss);
  }
  progress.step = step;
  if (loss != nullptr) progress.last_loss = loss->value();
  if (eval_loss != nullptr) progress.last_eval_loss = eval_loss->value();

  SweepChanges& sweep = Sweep(sweep_id);
  if (!sweep.wanted) return;
  sweep.jobs[rowid] = job_id;
  std::vector<v1::MetricPoint>& kept = sweep.points[rowid];
  kept.insert(kept.end(), points.begin(), points.end());
}

void Changes::Sequence(uint64_t attempt_id, uint64_t sequence) {
  uint64_t& highest = sequences_[attempt_id];
  highest = std::max(highest, sequence);
}

std::optional<uint64_t> Changes::SequenceOf(uint64_t attempt_id) const {
  auto it = sequences_.find(attempt_id);
  if (it == sequences_.end()) return std::nullopt;
  return it->second;
}

absl::Status Changes::Flush(Db& db, int64_t now) {
  if (!progress_.empty()) {
    absl::StatusOr<Statement> update = db.Prepare(
        "UPDATE jobs SET step = ?2, last_loss = COALESCE(?3, last_loss), updated_at = ?4, "
        "last_eval_loss = COALESCE(?5, last_eval_loss) WHERE rowid = ?1");
    if (!update.ok()) return update.status();
    for (const auto& [rowid, progress] : progress_) {
      absl::Status run = update->Bind(1, rowid)
                             .Bind(2, progress.step)
                             .Bind(3, progress.last_loss)
                             .Bind(4, now)
                             .Bind(5, progress.last_eval_loss)
                             .Run();
      if (!run.ok()) return run;
      update->Reset();
    }
  }
  if (!sequences_.empty()) {
    absl::StatusOr<Statement> update =
        db.Prepare("UPDATE attempts SET sequence = ?2 WHERE id = ?1 AND sequence < ?2");
    if (!update.ok()) return update.status();
    for (const auto& [attempt_id, sequence] : sequences_) {
      absl::Status run = update->Bind(1, static_cast<int64_t>(attempt_id))
                             .Bind(2, static_cast<int64_t>(sequence))
                             .Run();
      if (!run.ok()) return run;
      update->Reset();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Commit> Changes::BuildCommit(Db& db, int64_t version) {
  Commit commit;
  commit.version = version;
  commit.job_became_pending = pending_;
  const size_t max_jobs = feed_ != nullptr ? feed_->options().max_delta_jobs : 0;
  for (auto& [sweep_id, changes] : sweeps_) {
    commit.touched.insert(sweep_id);
    if (!changes.wanted || changes.created || changes.jobs.size() > max_jobs) continue;
    v1::SweepSnapshot& delta = commit.deltas[sweep_id];
    absl::StatusOr<v1::Sweep> sweep = ReadSweepHeader(db, sweep_id);
    if (!sweep.ok()) return sweep.status();
    *delta.mutable_sweep() = *std::move(sweep);
    absl::StatusOr<Statement> query =
        db.Prepare(absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE rowid = ?1"));
    if (!query.ok()) return query.status();
    for (auto& [rowid, job_id] : changes.jobs) {
      query->Bind(1, rowid);
      absl::StatusOr<bool> found = query->Step();
      if (!found.ok()) return found.status();
      if (*found) {
        absl::StatusOr<v1::Job> job = JobFromRow(*query);
        if (!job.ok()) return job.status();
        *delta.add_jobs() = *std::move(job);
      }
      query->Reset();
      auto points = changes.points.find(rowid);
      if (points == changes.points.end()) continue;
      v1::JobMetrics& metrics = *delta.add_metrics();
      metrics.set_job_id(job_id);
      for (v1::MetricPoint& point : points->second) *metrics.add_points() = std::move(point);
    }
  }
  return commit;
}

}  // namespace ablate::coordinator::internal
