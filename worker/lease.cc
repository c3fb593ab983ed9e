#include "worker/lease.h"

#include <algorithm>

namespace ablate::worker {

void Lease::Sent(uint64_t number, absl::Time at) {
  if (unanswered_.size() == kMaxUnanswered) unanswered_.pop_front();
  unanswered_.emplace_back(number, at);
}

void Lease::Answered(uint64_t number) {
  while (!unanswered_.empty() && unanswered_.front().first <= number) {
    if (unanswered_.front().first == number) Renew(unanswered_.front().second);
    unanswered_.pop_front();
  }
}

void Lease::Renew(absl::Time at) { renewed_ = std::max(renewed_, at); }

absl::Time Lease::FenceAt() const {
  if (lease_ <= absl::ZeroDuration() || renewed_ == absl::InfinitePast()) {
    return absl::InfiniteFuture();
  }
  return renewed_ + lease_ / 2;
}

absl::Time Lease::KillBy() const {
  if (lease_ <= absl::ZeroDuration() || renewed_ == absl::InfinitePast()) {
    return absl::InfiniteFuture();
  }
  return renewed_ + lease_ * 3 / 4;
}

}  // namespace ablate::worker
