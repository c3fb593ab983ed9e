#include "coordinator/service/worker_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace ablate::coordinator {

// Forwards every reaction to the stream; gRPC deletes nothing, so OnDone deletes it.
class WorkerStream::CallReactor final : public Reactor {
 public:
  explicit CallReactor(std::shared_ptr<WorkerStream> stream) : stream_(std::move(stream)) {}

  void OnReadDone(bool ok) override { stream_->ReadDone(ok); }
  void OnWriteDone(bool ok) override { stream_->WriteDone(ok); }
  void OnCancel() override { stream_->Cancelled(); }
  void OnDone() override {
    stream_->Done();
    delete this;
  }

 private:
  const std::shared_ptr<WorkerStream> stream_;
};

WorkerStream::Started WorkerStream::Start(grpc::CallbackServerContext* context,
                                          StreamHandler& handler,
                                          const WorkerStreamOptions& options,
                                          std::string bound_worker_id,
                                          std::function<void(WorkerStream*)> on_done) {
  std::shared_ptr<WorkerStream> stream(
      new WorkerStream(context, handler, options, std::move(bound_worker_id), std::move(on_done)));
  auto* reactor = new CallReactor(stream);
  absl::MutexLock lock(&stream->mu_);
  stream->reactor_ = reactor;
  // gRPC holds operations started before the handler returns until the call is bound.
  stream->MaybeReadLocked();
  return {reactor, stream.get()};
}

WorkerStream::WorkerStream(grpc::CallbackServerContext* context, StreamHandler& handler,
                           const WorkerStreamOptions& options, std::string bound_worker_id,
                           std::function<void(WorkerStream*)> on_done)
    : context_(context),
      handler_(handler),
      options_(options),
      bound_worker_id_(std::move(bound_worker_id)),
      on_done_(std::move(on_done)) {}

std::string WorkerStream::worker_id() const {
  absl::MutexLock lock(&mu_);
  return worker_id_;
}

bool WorkerStream::WasAssigned(uint64_t attempt_id, const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  auto it = assigned_.find(attempt_id);
  return it != assigned_.end() && it->second == job_id;
}

void WorkerStream::ForgetAssignment(uint64_t attempt_id) {
  absl::MutexLock lock(&mu_);
  assigned_.erase(attempt_id);
}

bool WorkerStream::Send(const v1::CoordinatorMessage& message) {
  absl::MutexLock lock(&mu_);
  return SendLocked(message);
}

bool WorkerStream::SendLocked(const v1::CoordinatorMessage& message) {
  if (reactor_ == nullptr || finished_ || finish_after_write_) return false;
  if (outgoing_.size() >= options_.max_queued) {
    FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              absl::StrCat("the worker read nothing while ", outgoing_.size(),
                                           " messages were queued for it")),
                 /*cancel_write=*/true);
    return false;
  }
  if (message.has_assign()) {
    assigned_[message.assign().attempt_id()] = message.assign().job().job_id();
  }
  outgoing_.push_back(message);
  if (!writing_) {
    writing_ = true;
    reactor_->StartWrite(&outgoing_.front());
  }
  return true;
}

void WorkerStream::Close(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, reason), /*cancel_write=*/true);
}

void WorkerStream::Finish(const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  FinishLocked(status, /*cancel_write=*/false);
}

void WorkerStream::Processed() {
  absl::MutexLock lock(&mu_);
  --unprocessed_;
  MaybeReadLocked();
}

void WorkerStream::ReadDone(bool ok) {
  std::optional<v1::WorkerInfo> hello;
  std::optional<v1::WorkerMessage> message;
  {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (!ok) {
      // The worker closed its side, or the call broke: nothing more will come.
      read_ended_ = true;
      FinishLocked(grpc::Status::OK, /*cancel_write=*/false);
      return;
    }
    received_.fetch_add(1, std::memory_order_relaxed);
    if (worker_id_.empty()) {
      if (!in_.has_hello()) {
        FinishLocked(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                  "the first message on a Connect stream must be hello"),
                     false);
        return;
      }
      if (in_.hello().worker_id().empty()) {
        FinishLocked(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hello.worker_id is required"), false);
        return;
      }
      if (!bound_worker_id_.empty() && in_.hello().worker_id() != bound_worker_id_) {
        FinishLocked(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                  absl::StrCat("this token speaks for worker '", bound_worker_id_,
                                               "', not for '", in_.hello().worker_id(), "'")),
                     false);
        return;
      }
      worker_id_ = in_.hello().worker_id();
      hello = std::move(*in_.mutable_hello());
    } else {
      if (in_.has_heartbeat()) {
        // Answered here, as read, under the lock that orders it before any message queued once
        // received_ has grown: the worker's lease then runs from what the scheduler counts.
        v1::CoordinatorMessage reply;
        reply.mutable_heartbeat_reply()->set_number(in_.heartbeat().number());
        SendLocked(reply);
      }
      message = std::move(in_);
      ++unprocessed_;
    }
    in_.Clear();
    handing_over_ = true;
  }
  if (hello) handler_.OnHello(shared_from_this(), *std::move(hello));
  if (message) handler_.OnMessage(shared_from_this(), *std::move(message));
  absl::MutexLock lock(&mu_);
  handing_over_ = false;
  MaybeReadLocked();
}

void WorkerStream::WriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  outgoing_.pop_front();
  if (finish_after_write_) {
    finished_ = true;
    outgoing_.clear();
    reactor_->Finish(*finish_after_write_);
    return;
  }
  if (!ok) {
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "write to the worker failed"), false);
    return;
  }
  if (!outgoing_.empty() && !finished_) {
    writing_ = true;
    reactor_->StartWrite(&outgoing_.front());
  }
}

void WorkerStream::Cancelled() {
  absl::MutexLock lock(&mu_);
  FinishLocked(grpc::Status::CANCELLED, /*cancel_write=*/false);
}

void WorkerStream::Done() {
  bool said_hello;
  {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    finished_ = true;
    outgoing_.clear();
    said_hello = !worker_id_.empty();
  }
  if (said_hello) handler_.OnEnded(shared_from_this());
  on_done_(this);
}

void WorkerStream::MaybeReadLocked() {
  if (reactor_ == nullptr || reading_ || read_ended_ || handing_over_ || finished_ ||
      finish_after_write_ || unprocessed_ >= options_.read_ahead) {
    return;
  }
  reading_ = true;
  reactor_->StartRead(&in_);
}

void WorkerStream::FinishLocked(const grpc::Status& status, bool cancel_write) {
  if (reactor_ == nullptr || finished_ || finish_after_write_) return;
  if (writing_) {
    finish_after_write_ = status;
    if (cancel_write) context_->TryCancel();
    return;
  }
  finished_ = true;
  outgoing_.clear();
  reactor_->Finish(status);
}

}  // namespace ablate::coordinator
