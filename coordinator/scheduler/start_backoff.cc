#include "coordinator/scheduler/start_backoff.h"

#include <algorithm>

#include "common/clock.h"

namespace ablate::coordinator {

bool StartBackoff::MayPlace(absl::Time now) const {
  return failures_ == 0 || (now >= rest_until_ && !probe_.has_value());
}

void StartBackoff::Placing() {
  if (failures_ > 0) probe_ = 0;
}

void StartBackoff::Placed(uint64_t attempt_id) {
  if (!probe_.has_value() || *probe_ != 0) return;
  if (attempt_id == 0) {
    probe_.reset();
  } else {
    probe_ = attempt_id;
  }
}

void StartBackoff::Failed(absl::Time now, uint64_t attempt_id, const std::string& reason) {
  reason_ = reason;
  last_failed_ = std::max(last_failed_, attempt_id);
  if (probe_ == attempt_id) probe_.reset();
  if (failures_ > 0 && now < rest_until_) return;
  ++failures_;
  rest_until_ = now + rest();
}

void StartBackoff::Ended(uint64_t attempt_id) {
  if (probe_ == attempt_id) probe_.reset();
}

bool StartBackoff::Started(uint64_t attempt_id) {
  // An attempt placed before the last failure started with a trainer that may have broken
  // since; attempt ids grow in the order attempts are placed.
  if (failures_ == 0 || attempt_id <= last_failed_) return false;
  failures_ = 0;
  rest_until_ = absl::InfinitePast();
  reason_.clear();
  probe_.reset();
  return true;
}

void StartBackoff::Reconnected() {
  rest_until_ = absl::InfinitePast();
  probe_.reset();
}

absl::Duration StartBackoff::rest() const {
  absl::Duration rest = options_.min_rest;
  for (uint32_t i = 1; i < failures_ && rest < options_.max_rest; ++i) rest *= 2;
  return std::min(rest, options_.max_rest);
}

v1::WorkerBackoff StartBackoff::ToProto() const {
  v1::WorkerBackoff backoff;
  backoff.set_reason(reason_);
  backoff.set_failures(failures_);
  if (rest_until_ != absl::InfinitePast())
    *backoff.mutable_retry_at() = ablate::ToProto(rest_until_);
  return backoff;
}

}  // namespace ablate::coordinator
