// A worker's side of its lease: when it must stop its trainers because the coordinator may soon
// hand their jobs to another worker.
//
// The coordinator takes a worker's attempts back once it has read nothing from it for its lease
// (Welcome.lease_timeout_ms, the coordinator's --lease-timeout-s), whether the worker is cut off
// or the coordinator itself was stuck. The worker cannot see when the coordinator last read it;
// it sees which of its own messages were answered: the hello (by the welcome) and each heartbeat
// (by a HeartbeatReply of its number, sent as the coordinator reads it). The coordinator read
// such a message no earlier than the worker sent it, so its lease runs out no earlier than one
// lease after that send time: the lease here runs from the send time of the newest answered
// message (`renewed`), which errs on the early side by the round trip.
//
// From there, with the coordinator's heartbeats every sixth of a lease:
//   FenceAt() = renewed + lease / 2: the trainers are asked to stop (SIGTERM, a checkpoint).
//     In normal operation the lease's age stays under a sixth of it plus a round trip, so half
//     leaves room for two answers lost or late before the worker stops anything for nothing;
//   KillBy()  = renewed + 3 * lease / 4: any still running get SIGKILL. The last quarter is the
//     margin for the kill to land and for the two hosts' clocks to run at slightly different
//     rates, so the trainers are gone before the coordinator can place their jobs elsewhere.
// A lease of zero (an older coordinator, which answers no heartbeat) never lapses.
//
// Times are passed in, so a test needs no clock. Not thread-safe: the Session guards it.
#ifndef ABLATE_WORKER_LEASE_H_
#define ABLATE_WORKER_LEASE_H_

#include <cstdint>
#include <deque>
#include <utility>

#include "absl/time/time.h"

namespace ablate::worker {

class Lease {
 public:
  // The welcome's lease_timeout_ms; zero: the lease never lapses.
  void SetDuration(absl::Duration lease) { lease_ = lease; }
  absl::Duration duration() const { return lease_; }

  // Heartbeat `number` (increasing) was handed to the stream at `at`.
  void Sent(uint64_t number, absl::Time at);
  // The coordinator answered heartbeat `number`: the lease runs from when it was sent, unless
  // it already runs from later. Unknown numbers (a former stream's, or forgotten) change
  // nothing.
  void Answered(uint64_t number);
  // The coordinator answered a message sent at `at` (the hello, by its welcome).
  void Renew(absl::Time at);

  // See the top of the file; InfiniteFuture while there is no lease or nothing was answered.
  absl::Time FenceAt() const;
  absl::Time KillBy() const;
  // When the newest answered message was sent; InfinitePast before any.
  absl::Time renewed() const { return renewed_; }

 private:
  // Heartbeats not answered yet, oldest first; at most kMaxUnanswered (a lost one's entry
  // leaves once a later one is answered, or when the list is full).
  static constexpr size_t kMaxUnanswered = 256;
  absl::Duration lease_ = absl::ZeroDuration();
  absl::Time renewed_ = absl::InfinitePast();
  std::deque<std::pair<uint64_t, absl::Time>> unanswered_;
};

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_LEASE_H_
