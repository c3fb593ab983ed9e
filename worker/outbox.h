// Messages for the coordinator, in the order they were produced, waiting to be written.
//
// While the stream is down they pile up. The outbox then keeps at most `capacity` messages by
// dropping the oldest metric batches and log lines first; every other message (started,
// checkpoint, finished, attempt_ended) is kept even past the capacity, since the coordinator's
// view of a job depends on each of them and there are only a few per attempt.
//
// Not thread-safe: its owner guards it.
#ifndef ABLATE_WORKER_OUTBOX_H_
#define ABLATE_WORKER_OUTBOX_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "ablate/v1/worker.pb.h"

namespace ablate::worker {

class Outbox {
 public:
  explicit Outbox(size_t capacity) : capacity_(capacity) {}

  // Appends `message`, first dropping the oldest droppable message when full (or `message`
  // itself, when it is droppable and nothing older is).
  void Push(v1::WorkerMessage message);
  // Puts back at the head a message taken by Pop() whose write failed.
  void PushFront(v1::WorkerMessage message);
  std::optional<v1::WorkerMessage> Pop();

  bool empty() const { return queue_.empty(); }
  size_t size() const { return queue_.size(); }
  // Messages dropped since construction.
  uint64_t dropped() const { return dropped_; }

 private:
  static bool Droppable(const v1::WorkerMessage& message);

  const size_t capacity_;
  std::deque<v1::WorkerMessage> queue_;
  size_t droppable_ = 0;  // how many messages in queue_ are droppable
  uint64_t dropped_ = 0;
};

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_OUTBOX_H_
