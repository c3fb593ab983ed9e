// Whether one worker may be given an attempt, after trainers failed to start there
// (AttemptEnded.start_failed: its trainer cannot be run, its work folder cannot be written).
// Such a refusal is not the job's fault, so its job is requeued uncounted; without a backoff
// the scheduler would hand it to the same worker again at once, thousands of times a minute.
//
// The rule (v1::WorkerBackoff states it for users):
//  1. A failed start begins a rest: min_rest after the first failure in a row, twice the rest
//     before after each next one, at most max_rest. A failure during a rest (an attempt placed
//     before it began) changes only the reason.
//  2. Once the rest is over, the worker is given one attempt (the probe) and no other while it
//     is out.
//  3. A trainer that starts there (its `started` event) of an attempt placed after the last
//     failure ends the backoff: the worker takes work as before. Any other end of the probe
//     (cancelled, lost, a trainer that failed before it said it started) lets the next
//     attempt be a probe at once.
//  4. A reconnect ends the rest and forgets the probe, keeping the count: a restarted worker
//     may have been mended, and one that was not rests longer after its next failure.
//
// Not thread-safe: the scheduler's mutex guards each worker's.
#ifndef ABLATE_COORDINATOR_SCHEDULER_START_BACKOFF_H_
#define ABLATE_COORDINATOR_SCHEDULER_START_BACKOFF_H_

#include <cstdint>
#include <optional>
#include <string>

#include "ablate/v1/worker.pb.h"
#include "absl/time/time.h"

namespace ablate::coordinator {

struct StartBackoffOptions {
  absl::Duration min_rest = absl::Seconds(1);
  absl::Duration max_rest = absl::Seconds(60);
};

class StartBackoff {
 public:
  explicit StartBackoff(StartBackoffOptions options = {}) : options_(options) {}

  // Whether an attempt may be placed on the worker at `now`: always, unless it backs off.
  bool MayPlace(absl::Time now) const;
  // An attempt is being placed (MayPlace held): when the worker backs off, it is the probe.
  void Placing();
  // The attempt being placed got its id; 0: it was not started after all (the store failed,
  // or the job was cancelled meanwhile), and the next attempt may be the probe.
  void Placed(uint64_t attempt_id);

  // `attempt_id` ended at `now` without its trainer starting, for `reason` (rule 1).
  void Failed(absl::Time now, uint64_t attempt_id, const std::string& reason);
  // `attempt_id` ended otherwise (rule 3's other ends).
  void Ended(uint64_t attempt_id);
  // The trainer of `attempt_id` started. True when that ended the backoff (rule 3).
  bool Started(uint64_t attempt_id);
  // The worker said hello again (rule 4).
  void Reconnected();

  bool backing_off() const { return failures_ > 0; }
  uint32_t failures() const { return failures_; }
  // What ListWorkers shows; only while backing_off().
  v1::WorkerBackoff ToProto() const;
  // How long the rest begun at the last failure lasts.
  absl::Duration rest() const;

 private:
  StartBackoffOptions options_;
  uint32_t failures_ = 0;  // failed starts in a row that began a rest
  absl::Time rest_until_ = absl::InfinitePast();
  std::string reason_;
  uint64_t last_failed_ = 0;  // the attempt whose failure began the rest
  // Set while the probe is out: its attempt id, 0 until the store gave it one.
  std::optional<uint64_t> probe_;
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SCHEDULER_START_BACKOFF_H_
