#include "coordinator/service/worker_session.h"

#include <utility>

namespace ablate::coordinator {

WorkerSession::WorkerSession(std::string worker_id, grpc::ServerContext& context, Stream& stream)
    : worker_id_(std::move(worker_id)), context_(context), stream_(stream) {}

bool WorkerSession::Send(const v1::CoordinatorMessage& message) {
  absl::MutexLock lock(&mu_);
  if (closed_) return false;
  return stream_.Write(message);
}

void WorkerSession::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

void WorkerSession::Cancel() { context_.TryCancel(); }

}  // namespace ablate::coordinator
