#include "coordinator/api/log_tails.h"

#include <utility>

#include "common/log.h"

namespace ablate::coordinator {

LogTails::LogTails(Clock& clock, Store* store, size_t max_bytes)
    : clock_(clock), store_(store), max_bytes_(max_bytes) {}

void LogTails::Put(const v1::LogTail& tail) {
  size_t bytes = 0;
  for (const std::string& line : tail.lines()) bytes += line.size();
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = tails_.try_emplace(tail.job_id());
  Entry& entry = it->second;
  if (inserted) {
    entry.age = by_age_.insert(by_age_.end(), tail.job_id());
  } else if (tail.attempt_id() < entry.log.attempt_id()) {
    return;
  } else {
    by_age_.splice(by_age_.end(), by_age_, entry.age);
  }
  bytes_ -= entry.bytes;
  entry.bytes = bytes;
  bytes_ += bytes;
  entry.log.set_job_id(tail.job_id());
  entry.log.set_attempt_id(tail.attempt_id());
  *entry.log.mutable_lines() = tail.lines();
  entry.log.set_truncated(tail.truncated());
  *entry.log.mutable_updated_at() = ToProto(clock_.Now());
  // The newest tail stays even when it alone is over the bound.
  while (bytes_ > max_bytes_ && by_age_.size() > 1) {
    auto oldest = tails_.find(by_age_.front());
    bytes_ -= oldest->second.bytes;
    tails_.erase(oldest);
    by_age_.pop_front();
  }
}

void LogTails::Ended(const std::string& job_id, uint64_t attempt_id) {
  if (store_ == nullptr) return;
  v1::JobLog log = InMemory(job_id);
  if (log.attempt_id() != attempt_id) return;  // none arrived, or only an older attempt's
  store_->SaveJobLogAsync(std::move(log), [job_id, attempt_id](const absl::Status& status) {
    if (status.ok()) return;
    ABLATE_LOG(ERROR) << "log tail not stored job_id=" << job_id << " attempt_id=" << attempt_id
                      << " error=\"" << status.message() << "\"";
  });
}

absl::StatusOr<v1::JobLog> LogTails::Get(const std::string& job_id,
                                         uint64_t current_attempt_id) const {
  v1::JobLog memory = InMemory(job_id);
  // A running attempt's tail is in memory; the store is read for ended attempts only.
  if (store_ == nullptr || current_attempt_id == 0 || memory.attempt_id() == current_attempt_id) {
    return memory;
  }
  absl::StatusOr<v1::JobLog> stored = store_->ReadJobLog(job_id);
  if (!stored.ok()) return stored.status();
  return stored->attempt_id() > memory.attempt_id() ? *std::move(stored) : memory;
}

v1::JobLog LogTails::InMemory(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  if (auto it = tails_.find(job_id); it != tails_.end()) return it->second.log;
  v1::JobLog empty;
  empty.set_job_id(job_id);
  return empty;
}

}  // namespace ablate::coordinator
