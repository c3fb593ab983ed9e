#include "coordinator/feed/change_feed.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace ablate::coordinator {

// --- Subscription -----------------------------------------------------------------------------

ChangeFeed::Subscription::~Subscription() { feed_.RemoveSubscriber(this); }

ChangeFeed::Subscription::Result ChangeFeed::Subscription::Next(Delta* out,
                                                                absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || fell_behind_ || closed_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (fell_behind_) {
    // Reported once; the subscriber takes a snapshot and calls SkipThrough with its version.
    fell_behind_ = false;
    queue_.clear();
    return Result::kFellBehind;
  }
  if (!queue_.empty()) {
    *out = std::move(queue_.front());
    queue_.pop_front();
    return Result::kDelta;
  }
  return closed_ ? Result::kClosed : Result::kTimeout;
}

void ChangeFeed::Subscription::SkipThrough(int64_t version) {
  absl::MutexLock lock(&mu_);
  skip_through_ = std::max(skip_through_, version);
  while (!queue_.empty() && queue_.front()->version() <= skip_through_) queue_.pop_front();
}

void ChangeFeed::Subscription::SetNotify(std::function<void()> notify) {
  std::function<void()> now;
  {
    absl::MutexLock lock(&mu_);
    notify_ = std::move(notify);
    if (notify_ && (!queue_.empty() || fell_behind_ || closed_)) now = notify_;
  }
  if (now) now();
}

std::function<void()> ChangeFeed::Subscription::Offer(const Delta& delta) {
  absl::MutexLock lock(&mu_);
  if (closed_ || fell_behind_ || delta->version() <= skip_through_) return nullptr;
  if (queue_.size() >= feed_.options_.subscriber_queue) {
    fell_behind_ = true;
    queue_.clear();
  } else {
    queue_.push_back(delta);
  }
  return notify_;
}

std::function<void()> ChangeFeed::Subscription::FallBehind() {
  absl::MutexLock lock(&mu_);
  if (closed_) return nullptr;
  fell_behind_ = true;
  queue_.clear();
  return notify_;
}

std::function<void()> ChangeFeed::Subscription::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  return notify_;
}

// --- ChangeFeed -------------------------------------------------------------------------------

ChangeFeed::ChangeFeed(Clock& clock, ChangeFeedOptions options)
    : clock_(clock), options_(options) {}

ChangeFeed::~ChangeFeed() { Close(); }

std::unique_ptr<ChangeFeed::Subscription> ChangeFeed::AddSubscriber(const std::string& sweep_id) {
  std::unique_ptr<Subscription> sub(new Subscription(*this, sweep_id));
  SweepState& sweep = sweeps_[sweep_id];
  sweep.subscribers.insert(sub.get());
  sweep.last_watched = clock_.Now();
  if (closed_) sub->Close();
  return sub;
}

std::unique_ptr<ChangeFeed::Subscription> ChangeFeed::Subscribe(const std::string& sweep_id) {
  absl::MutexLock lock(&mu_);
  return AddSubscriber(sweep_id);
}

absl::StatusOr<std::unique_ptr<ChangeFeed::Subscription>> ChangeFeed::Resume(
    const std::string& sweep_id, int64_t after_version) {
  absl::MutexLock lock(&mu_);
  auto it = sweeps_.find(sweep_id);
  // A sweep the feed never saw touched has no change since the feed started.
  const int64_t complete_after = it == sweeps_.end() ? evicted_through_ : it->second.complete_after;
  if (after_version > version_ || after_version < complete_after ||
      after_version < evicted_through_) {
    return absl::OutOfRangeError(absl::StrCat("sweep ", sweep_id, ": changes after version ",
                                              after_version, " are not all kept (feed at ",
                                              version_, "); take a snapshot"));
  }
  std::unique_ptr<Subscription> sub = AddSubscriber(sweep_id);
  for (const Retained& retained : buffer_) {
    if (retained.version <= after_version) continue;
    for (const auto& [id, delta] : retained.deltas) {
      if (id == sweep_id) sub->Offer(delta);
    }
  }
  return sub;
}

void ChangeFeed::RemoveSubscriber(Subscription* sub) {
  absl::MutexLock lock(&mu_);
  auto it = sweeps_.find(sub->sweep_id());
  if (it == sweeps_.end()) return;
  it->second.subscribers.erase(sub);
  it->second.last_watched = clock_.Now();
}

void ChangeFeed::AddPendingListener(std::function<void()> listener) {
  absl::MutexLock lock(&mu_);
  pending_listeners_.push_back(std::move(listener));
}

void ChangeFeed::Close() {
  std::vector<std::function<void()>> notify;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    for (auto& [id, sweep] : sweeps_) {
      for (Subscription* sub : sweep.subscribers) {
        if (auto fn = sub->Close()) notify.push_back(std::move(fn));
      }
    }
  }
  for (auto& fn : notify) fn();
}

void ChangeFeed::StartAt(int64_t version) {
  absl::MutexLock lock(&mu_);
  version_ = version;
  evicted_through_ = version;
}

bool ChangeFeed::Wants(const std::string& sweep_id) {
  absl::MutexLock lock(&mu_);
  auto it = sweeps_.find(sweep_id);
  if (it == sweeps_.end()) return false;
  return !it->second.subscribers.empty() ||
         clock_.Now() - it->second.last_watched < options_.linger;
}

void ChangeFeed::Publish(Commit commit) {
  std::vector<std::function<void()>> notify;
  {
    absl::MutexLock lock(&mu_);
    version_ = commit.version;
    Retained retained;
    retained.version = commit.version;
    for (const std::string& sweep_id : commit.touched) {
      SweepState& sweep = sweeps_[sweep_id];
      auto found = commit.deltas.find(sweep_id);
      if (found == commit.deltas.end()) {
        // No delta: the sweep's history is broken here, and its subscribers fall behind.
        sweep.complete_after = commit.version;
        for (Subscription* sub : sweep.subscribers) {
          if (auto fn = sub->FallBehind()) notify.push_back(std::move(fn));
        }
        continue;
      }
      found->second.set_delta(true);
      found->second.set_version(commit.version);
      for (const v1::JobMetrics& job : found->second.metrics()) {
        retained.points += static_cast<size_t>(job.points_size());
      }
      auto delta = std::make_shared<const v1::SweepSnapshot>(std::move(found->second));
      for (Subscription* sub : sweep.subscribers) {
        if (auto fn = sub->Offer(delta)) notify.push_back(std::move(fn));
      }
      retained.deltas.emplace_back(sweep_id, std::move(delta));
    }
    if (!retained.deltas.empty()) {
      buffered_points_ += retained.points;
      buffer_.push_back(std::move(retained));
      Trim();
    }
    if (commit.job_became_pending) {
      notify.insert(notify.end(), pending_listeners_.begin(), pending_listeners_.end());
    }
  }
  for (auto& fn : notify) fn();
}

void ChangeFeed::Trim() {
  while (!buffer_.empty() &&
         (buffer_.size() > options_.replay_commits || buffered_points_ > options_.replay_points)) {
    evicted_through_ = buffer_.front().version;
    buffered_points_ -= buffer_.front().points;
    buffer_.pop_front();
  }
}

int64_t ChangeFeed::version() {
  absl::MutexLock lock(&mu_);
  return version_;
}

}  // namespace ablate::coordinator
