#include "coordinator/api/log_tails.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "common/log.h"

namespace ablate::coordinator {
namespace {

// The log a worker's tail reads as, received at `now`.
v1::JobLog JobLogOf(const v1::LogTail& tail, absl::Time now) {
  v1::JobLog log;
  log.set_job_id(tail.job_id());
  log.set_attempt_id(tail.attempt_id());
  *log.mutable_lines() = tail.lines();
  log.set_truncated(tail.truncated());
  *log.mutable_updated_at() = ToProto(now);
  return log;
}

}  // namespace

LogTails::LogTails(Clock& clock, Store* store, size_t max_bytes)
    : clock_(clock), store_(store), max_bytes_(max_bytes) {}

LogTails::~LogTails() {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return writes_queued_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

void LogTails::Put(const v1::LogTail& tail) {
  size_t bytes = 0;
  for (const std::string& line : tail.lines()) bytes += line.size();
  // An attempt may have ended before this process started, unseen by Ended: the store says so,
  // asked once, when memory first meets the attempt (its entry then carries the answer). The
  // answer cannot go stale: an ended attempt stays ended.
  const bool ended_before = store_ != nullptr && !Knows(tail.job_id(), tail.attempt_id()) &&
                            EndedInStore(tail.job_id(), tail.attempt_id());
  std::optional<v1::JobLog> write;
  {
    absl::ReleasableMutexLock lock(&mu_);
    auto [it, inserted] = tails_.try_emplace(tail.job_id());
    Entry& entry = it->second;
    if (inserted) {
      entry.age = by_age_.insert(by_age_.end(), tail.job_id());
    } else if (tail.attempt_id() < entry.log.attempt_id()) {
      // An older attempt's tail, which memory no longer keeps (invariant 1). A job runs one
      // attempt at a time, so that attempt has ended: its tail goes to the store (invariant 3).
      if (store_ == nullptr) return;
      ++writes_queued_;
      lock.Release();
      Write(JobLogOf(tail, clock_.Now()), /*late=*/true);
      return;
    } else {
      by_age_.splice(by_age_.end(), by_age_, entry.age);
    }
    // A worker resends the same tail on every new stream; only a changed one is written again.
    const bool same_attempt = tail.attempt_id() == entry.log.attempt_id();
    const bool changed = !same_attempt || tail.truncated() != entry.log.truncated() ||
                         !std::equal(tail.lines().begin(), tail.lines().end(),
                                     entry.log.lines().begin(), entry.log.lines().end());
    if (!same_attempt) {
      entry.ended = false;
      entry.rewrite = false;
    }
    bytes_ -= entry.bytes;
    entry.bytes = bytes;
    bytes_ += bytes;
    entry.log = JobLogOf(tail, clock_.Now());
    if (store_ != nullptr) {
      if (!entry.ended) {
        entry.ended = TakeUntailedEnd(tail.job_id(), tail.attempt_id()) || ended_before;
      }
      if (entry.ended && changed) write = StartWrite(entry);
    }
    // The newest tail stays even when it alone is over the bound.
    while (bytes_ > max_bytes_ && by_age_.size() > 1) {
      auto oldest = tails_.find(by_age_.front());
      bytes_ -= oldest->second.bytes;
      tails_.erase(oldest);
      by_age_.pop_front();
    }
  }
  if (write.has_value()) Write(*std::move(write));
}

void LogTails::Ended(const std::string& job_id, uint64_t attempt_id) {
  if (store_ == nullptr) return;
  std::optional<v1::JobLog> write;
  {
    absl::MutexLock lock(&mu_);
    auto it = tails_.find(job_id);
    if (it != tails_.end() && it->second.log.attempt_id() == attempt_id) {
      it->second.ended = true;
      write = StartWrite(it->second);
    } else if (it == tails_.end() || it->second.log.attempt_id() < attempt_id) {
      RememberUntailedEnd(job_id, attempt_id);
    }
    // Else memory holds a newer attempt's tail, and this attempt's can no longer be kept.
  }
  if (write.has_value()) Write(*std::move(write));
}

absl::StatusOr<v1::JobLog> LogTails::Get(const std::string& job_id,
                                         uint64_t current_attempt_id) const {
  v1::JobLog memory = InMemory(job_id);
  // A running attempt's tail is in memory; the store is read for ended attempts only.
  if (store_ == nullptr || current_attempt_id == 0 || memory.attempt_id() == current_attempt_id) {
    return memory;
  }
  absl::StatusOr<v1::JobLog> stored = store_->ReadJobLog(job_id, 0);
  if (!stored.ok()) return stored.status();
  return stored->attempt_id() > memory.attempt_id() ? *std::move(stored) : memory;
}

absl::StatusOr<v1::JobLog> LogTails::GetAttempt(const std::string& job_id,
                                                uint64_t attempt_id) const {
  v1::JobLog log = InMemory(job_id);
  if (log.attempt_id() != attempt_id && store_ != nullptr) {
    absl::StatusOr<v1::JobLog> stored = store_->ReadJobLog(job_id, attempt_id);
    if (!stored.ok()) return stored.status();
    log = *std::move(stored);
  }
  if (log.attempt_id() == attempt_id) return log;
  v1::JobLog none;
  none.set_job_id(job_id);
  return none;
}

v1::JobLog LogTails::InMemory(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  if (auto it = tails_.find(job_id); it != tails_.end()) return it->second.log;
  v1::JobLog empty;
  empty.set_job_id(job_id);
  return empty;
}

bool LogTails::Knows(const std::string& job_id, uint64_t attempt_id) const {
  absl::MutexLock lock(&mu_);
  if (auto it = tails_.find(job_id);
      it != tails_.end() && it->second.log.attempt_id() >= attempt_id) {
    return true;
  }
  auto ended = untailed_ends_.find(job_id);
  return ended != untailed_ends_.end() && ended->second >= attempt_id;
}

bool LogTails::EndedInStore(const std::string& job_id, uint64_t attempt_id) const {
  absl::StatusOr<std::vector<v1::Attempt>> attempts = store_->ListAttempts(job_id);
  if (!attempts.ok()) {
    // Taken as running: the tail stays in memory, and is stored if Ended comes.
    ABLATE_LOG(WARNING) << "attempt state not read job_id=" << job_id
                        << " attempt_id=" << attempt_id << " error=\""
                        << attempts.status().message() << "\"";
    return false;
  }
  for (const v1::Attempt& attempt : *attempts) {
    if (attempt.id() != attempt_id) continue;
    return attempt.state() != v1::ATTEMPT_STATE_ASSIGNED &&
           attempt.state() != v1::ATTEMPT_STATE_RUNNING &&
           attempt.state() != v1::ATTEMPT_STATE_UNSPECIFIED;
  }
  return false;  // not an attempt of the job: its tail cannot be stored anyway
}

void LogTails::RememberUntailedEnd(const std::string& job_id, uint64_t attempt_id) {
  auto [it, inserted] = untailed_ends_.try_emplace(job_id, attempt_id);
  if (!inserted && it->second >= attempt_id) return;
  it->second = attempt_id;
  untailed_order_.emplace_back(job_id, attempt_id);
  while (untailed_order_.size() > kMaxUntailedEnds) {
    const auto& [oldest_job, oldest_attempt] = untailed_order_.front();
    auto oldest = untailed_ends_.find(oldest_job);
    if (oldest != untailed_ends_.end() && oldest->second == oldest_attempt) {
      untailed_ends_.erase(oldest);
    }
    untailed_order_.pop_front();
  }
}

bool LogTails::TakeUntailedEnd(const std::string& job_id, uint64_t attempt_id) {
  auto it = untailed_ends_.find(job_id);
  if (it == untailed_ends_.end()) return false;
  if (it->second > attempt_id) return true;  // an older attempt than one that ended: ended too
  const bool ended = it->second == attempt_id;
  untailed_ends_.erase(it);  // this tail, or a newer attempt's, now stands for it
  return ended;
}

std::optional<v1::JobLog> LogTails::StartWrite(Entry& entry) {
  if (entry.writing) {
    entry.rewrite = true;
    return std::nullopt;
  }
  entry.writing = true;
  ++writes_queued_;
  return entry.log;
}

void LogTails::Write(v1::JobLog log, bool late) {
  std::string job_id = log.job_id();
  const uint64_t attempt_id = log.attempt_id();
  store_->SaveJobLogAsync(std::move(log), [this, job_id = std::move(job_id), attempt_id,
                                           late](const absl::Status& status) {
    WriteDone(job_id, attempt_id, late, status);
  });
}

void LogTails::WriteDone(const std::string& job_id, uint64_t attempt_id, bool late,
                         const absl::Status& status) {
  if (!status.ok()) {
    ABLATE_LOG(ERROR) << "log tail not stored job_id=" << job_id << " attempt_id=" << attempt_id
                      << " error=\"" << status.message() << "\"";
  }
  if (late) {
    absl::MutexLock lock(&mu_);
    --writes_queued_;
    return;
  }
  std::optional<v1::JobLog> again;
  {
    absl::MutexLock lock(&mu_);
    auto it = tails_.find(job_id);
    if (it != tails_.end() && it->second.writing) {
      Entry& entry = it->second;
      if (entry.rewrite && entry.ended) {
        again = entry.log;  // still writing: this write's place in writes_queued_ passes on
      } else {
        entry.writing = false;
      }
      entry.rewrite = false;
    }
    // With none left queued the destructor may finish once the lock is released, so nothing
    // below touches the object unless this write's place passed on.
    if (!again.has_value()) --writes_queued_;
  }
  if (again.has_value()) Write(*std::move(again));
}

}  // namespace ablate::coordinator
