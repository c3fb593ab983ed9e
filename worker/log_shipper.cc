#include "worker/log_shipper.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "worker/log_tail.h"

namespace ablate::worker {

std::vector<v1::WorkerMessage> LogShipper::Due(const std::vector<Target>& targets, absl::Time now,
                                               uint64_t generation) {
  if (generation != generation_) {
    generation_ = generation;
    for (auto& [attempt_id, state] : states_) {
      state.written = false;
      state.next_read = absl::InfinitePast();
    }
  }
  std::map<uint64_t, State> held;
  std::vector<v1::WorkerMessage> due;
  for (const Target& target : targets) {
    State& state = held[target.attempt_id];
    if (auto it = states_.find(target.attempt_id); it != states_.end()) state = it->second;
    if (target.ended && !state.ended) {
      state.ended = true;
      state.next_read = absl::InfinitePast();
    }
    if (now < state.next_read) continue;
    // An ended attempt's log changes no more: once written, it waits for the next stream.
    state.next_read = state.ended ? absl::InfiniteFuture() : now + options_.interval;
    LogLines tail = ReadLogLines(target.log, options_.max_lines, options_.max_bytes);
    const size_t hash = absl::HashOf(tail.lines, tail.truncated);
    if (state.written ? hash == state.written_hash : tail.lines.empty()) continue;
    // Written() puts an ended attempt to rest; until then a failed write is retried.
    if (state.ended) state.next_read = now + options_.interval;
    state.due_hash = hash;
    v1::WorkerMessage& message = due.emplace_back();
    v1::LogTail& log_tail = *message.mutable_log_tail();
    log_tail.set_job_id(target.job_id);
    log_tail.set_attempt_id(target.attempt_id);
    log_tail.mutable_lines()->Add(std::make_move_iterator(tail.lines.begin()),
                                  std::make_move_iterator(tail.lines.end()));
    log_tail.set_truncated(tail.truncated);
  }
  states_ = std::move(held);
  return due;
}

void LogShipper::Written(const v1::WorkerMessage& message) {
  auto it = states_.find(message.log_tail().attempt_id());
  if (it == states_.end()) return;
  State& state = it->second;
  state.written = true;
  state.written_hash = state.due_hash;
  if (state.ended) state.next_read = absl::InfiniteFuture();
}

absl::Time LogShipper::NextRead() const {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [attempt_id, state] : states_) next = std::min(next, state.next_read);
  return next;
}

}  // namespace ablate::worker
