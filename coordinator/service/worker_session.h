// A WorkerSession owns the write side of one worker's Connect stream: it is the WorkerLink the
// scheduler sends assignments and cancels through. The handler thread of the stream keeps the
// read side.
//
// Lifetime: created by WorkerServiceImpl::Connect after the worker's hello and shared with the
// scheduler, which may hold it after the stream ended; Close() makes every later Send() a
// no-op, so the stream is never written after its handler returned.
//
// Thread safety: Send() and Close() may be called from any thread; writes are serialized by
// the session's mutex (a gRPC stream allows one write at a time beside one read).
#ifndef ABLATE_COORDINATOR_SERVICE_WORKER_SESSION_H_
#define ABLATE_COORDINATOR_SERVICE_WORKER_SESSION_H_

#include <string>

#include "ablate/v1/worker.grpc.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/scheduler/scheduler.h"

namespace ablate::coordinator {

class WorkerSession final : public WorkerLink {
 public:
  using Stream = grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>;

  // `context` and `stream` belong to the Connect call and must outlive every Send() made
  // before Close().
  WorkerSession(std::string worker_id, grpc::ServerContext& context, Stream& stream);

  bool Send(const v1::CoordinatorMessage& message) override;

  // Waits for a write in progress, then refuses every later Send().
  void Close();

  // Cancels the call, so the handler's blocked Read() returns. Only while the handler runs.
  void Cancel();

  const std::string& worker_id() const { return worker_id_; }

 private:
  // Constant after construction.
  const std::string worker_id_;
  grpc::ServerContext& context_;
  Stream& stream_;

  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SERVICE_WORKER_SESSION_H_
