// Where a trainer's events go. A run sends TrainerEvent messages in the order trainer.proto
// documents: started, then metrics, checkpoints and logs, then finished. The trainer only sees
// this interface; ablate-train picks the worker's pipe or a console, and tests keep the events
// in memory.
//
// Thread-safety: a sink is used by one thread at a time.
#ifndef ABLATE_TRAINER_LIB_TRAIN_EVENT_SINK_H_
#define ABLATE_TRAINER_LIB_TRAIN_EVENT_SINK_H_

#include <cstdint>
#include <ostream>

#include "ablate/v1/trainer.pb.h"
#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/event_pipe.h"

namespace ablate::train {

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Delivers one event. A failure means no one is listening any more: the trainer stops.
  virtual absl::Status Send(const v1::TrainerEvent& event) = 0;
};

// Length-delimited events on a file descriptor it does not own (the worker's pipe).
class PipeEventSink : public EventSink {
 public:
  explicit PipeEventSink(int fd) : writer_(fd) {}
  absl::Status Send(const v1::TrainerEvent& event) override;

 private:
  EventWriter writer_;
};

// One human-readable line per event on `out`, for a run started by hand:
//   step 40/200 loss 2.913 lr 3.0e-03 tok/s 51234
// with " mfu 41.2%" and " peak 12.50 GiB planned 13.00 GiB" (the allocator's peak and the
// memory plan) appended where the device reports them.
class ConsoleEventSink : public EventSink {
 public:
  explicit ConsoleEventSink(std::ostream& out) : out_(out) {}
  absl::Status Send(const v1::TrainerEvent& event) override;

 private:
  void PrintMetrics(const v1::MetricBatch& batch);

  std::ostream& out_;
  int64_t total_steps_ = 0;  // from TrainerStarted
};

// Each event to `primary`, then to `copy`; only the primary's failure is the sink's. Under a
// worker, ablate-train sends its events down the pipe and their console lines to stdout, which
// the worker keeps as trainer.log, so that the log (and its tail on the dashboard) reads as a
// run started by hand does.
class TeeEventSink : public EventSink {
 public:
  // Both borrowed: they must outlive the tee.
  TeeEventSink(EventSink& primary, EventSink& copy) : primary_(primary), copy_(copy) {}
  absl::Status Send(const v1::TrainerEvent& event) override;

 private:
  EventSink& primary_;
  EventSink& copy_;
};

// Each event to `next`, and a TrainerProgress event on Progress() once `every` has passed since
// the last event of any kind, so that the worker hears from a trainer whose metrics come seldom
// (a large log_every, a long evaluation) and can tell it from a hung one (trainer.proto).
class ProgressEventSink : public EventSink {
 public:
  // `next` is borrowed: it must outlive this sink. `every` zero: a progress event at each call.
  ProgressEventSink(EventSink& next, absl::Duration every)
      : next_(next), every_(every), last_(absl::Now()) {}
  absl::Status Send(const v1::TrainerEvent& event) override;
  // `step` steps done; sends a progress event when one is due.
  absl::Status Progress(int64_t step);

 private:
  EventSink& next_;
  const absl::Duration every_;
  absl::Time last_;  // of the last event sent, or the sink's creation
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_EVENT_SINK_H_
