// A ReportBatcher coalesces an attempt's metric events into reports of many points before
// they enter the outbox (outbox.h), so that the coordinator stores, and acknowledges, one
// report where the trainer sent hundreds of events of a few points each: a report costs the
// coordinator one row and one commit entry whatever it holds (coordinator/store/metric_table.h).
//
// Invariants:
//  1. Each attempt has at most one open batch: a JobEvent whose MetricBatch holds the points
//     of the attempt's metric events added since the batch opened, in the order added.
//  2. A batch leaves (is returned, for the outbox to number and keep) when adding the next
//     event's points would take it past `max_points`, when it has been open for `max_delay`
//     (TakeDue), or just before any other report of the same attempt (a started, checkpoint,
//     log or finished event, or its AttemptEnded), which therefore keeps its place after the
//     points produced before it. A single event of more than `max_points` points leaves alone.
//  3. Reports of other kinds, and of other attempts, pass through at once: only metric
//     events wait, and for at most `max_delay` after the first of a batch arrived.
// A batch is numbered only when it leaves, and never changes after that, so a report resent
// after a reconnect carries exactly the points it carried the first time, under the same
// (attempt_id, sequence), which the coordinator stores once.
//
// Not thread-safe: its owner guards it (the Session, with the outbox).
#ifndef ABLATE_WORKER_REPORT_BATCHER_H_
#define ABLATE_WORKER_REPORT_BATCHER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "ablate/v1/worker.pb.h"
#include "absl/time/time.h"

namespace ablate::worker {

struct ReportBatcherOptions {
  // Points per report, at most (but see invariant 2). A few thousand points make a report of
  // about 100 KB on the wire, well inside gRPC's 4 MB message limit.
  size_t max_points = 4096;
  // How long a metric point may wait for others, at most: what the dashboard's curves lag.
  absl::Duration max_delay = absl::Milliseconds(100);
};

class ReportBatcher {
 public:
  explicit ReportBatcher(ReportBatcherOptions options) : options_(options) {}

  // Takes `report` (a job_event or an attempt_ended; other messages pass through) at time
  // `now`. Returns the reports ready for the outbox, in the order they are to be numbered:
  // empty when `report` joined an open batch.
  std::vector<v1::WorkerMessage> Add(v1::WorkerMessage report, absl::Time now);

  // The batches open since `max_delay` or longer before `now`.
  std::vector<v1::WorkerMessage> TakeDue(absl::Time now);

  // When the oldest open batch is due; InfiniteFuture when none is open.
  absl::Time NextDue() const;

  // Batches open.
  size_t open() const { return open_.size(); }

 private:
  struct Batch {
    v1::WorkerMessage message;  // a job_event whose event holds the points
    size_t points = 0;
    absl::Time due;
  };

  const ReportBatcherOptions options_;
  std::map<uint64_t, Batch> open_;  // by attempt id
};

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_REPORT_BATCHER_H_
