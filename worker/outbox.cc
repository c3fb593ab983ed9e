#include "worker/outbox.h"

#include <algorithm>
#include <utility>

namespace ablate::worker {

bool Outbox::Droppable(const v1::WorkerMessage& message) {
  if (!message.has_job_event()) return false;
  const v1::TrainerEvent& event = message.job_event().event();
  return event.has_metrics() || event.has_log();
}

void Outbox::Push(v1::WorkerMessage message) {
  const bool droppable = Droppable(message);
  if (queue_.size() >= capacity_) {
    if (droppable_ > 0) {
      queue_.erase(std::find_if(queue_.begin(), queue_.end(), Droppable));
      --droppable_;
      ++dropped_;
    } else if (droppable) {
      ++dropped_;
      return;
    }
  }
  droppable_ += droppable ? 1 : 0;
  queue_.push_back(std::move(message));
}

void Outbox::PushFront(v1::WorkerMessage message) {
  droppable_ += Droppable(message) ? 1 : 0;
  queue_.push_front(std::move(message));
}

std::optional<v1::WorkerMessage> Outbox::Pop() {
  if (queue_.empty()) return std::nullopt;
  v1::WorkerMessage message = std::move(queue_.front());
  queue_.pop_front();
  droppable_ -= Droppable(message) ? 1 : 0;
  return message;
}

}  // namespace ablate::worker
