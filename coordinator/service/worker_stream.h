// A WorkerStream is one worker's Connect call on gRPC's callback API: the plumbing between the
// call and the logic (a StreamHandler, in production the WorkerManager), as Ray's GCS keeps
// its handlers apart from its managers. It only moves messages:
//  - reads: the first message must be a hello with a worker id (else the call ends with
//    FAILED_PRECONDITION or INVALID_ARGUMENT), and with the id the caller's token is bound to
//    when it is bound to one (else PERMISSION_DENIED); it goes to OnHello, and every later message
//    to OnMessage. At most `read_ahead` messages are handed over and not yet Processed(); the
//    next read starts when one is, so a slow handler slows its worker's stream (HTTP/2 flow
//    control) instead of growing a queue;
//  - heartbeats: each is answered at once, as it is read, with a HeartbeatReply of its number
//    (the worker's side of the lease: worker/lease.h), then handed over like any message;
//  - writes: Send() queues a message and returns at once. One write is in flight; the next
//    starts from OnWriteDone. A worker that lets more than `max_queued` messages pile up (it
//    stopped reading) has its call ended, so it cannot hold memory without bound;
//  - the end: the call is finished once reading ends (the worker closed or vanished), or by
//    Finish()/Close(); OnEnded follows every OnMessage of the stream, once the call is done.
// No method blocks: they take the stream's mutex for a few instructions, and no reaction
// waits for the handler.
//
// Lifetime: gRPC owns the reactor, which holds the stream by shared_ptr; the scheduler and
// the handler may hold it longer. After the call is done every Send() returns false.
//
// Thread safety: every public method may be called from any thread.
#ifndef ABLATE_COORDINATOR_SERVICE_WORKER_STREAM_H_
#define ABLATE_COORDINATOR_SERVICE_WORKER_STREAM_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ablate/v1/worker.grpc.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/scheduler/scheduler.h"
#include "grpcpp/support/server_callback.h"

namespace ablate::coordinator {

class WorkerStream;

// What a WorkerStream hands over. Called from gRPC reactions: implementations must not block.
class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // The worker's hello (worker_id set).
  virtual void OnHello(std::shared_ptr<WorkerStream> stream, v1::WorkerInfo hello) = 0;
  // A later message; the handler calls stream->Processed() once it is done with it.
  virtual void OnMessage(std::shared_ptr<WorkerStream> stream, v1::WorkerMessage message) = 0;
  // The call is over (only for streams that said hello); after every OnMessage.
  virtual void OnEnded(std::shared_ptr<WorkerStream> stream) = 0;
};

struct WorkerStreamOptions {
  int read_ahead = 64;         // messages handed over and not yet Processed()
  size_t max_queued = 65'536;  // outgoing messages waiting for the network
};

class WorkerStream final : public WorkerLink, public std::enable_shared_from_this<WorkerStream> {
 public:
  using Reactor = grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>;

  struct Started {
    Reactor* reactor;      // for gRPC, which owns and deletes it
    WorkerStream* stream;  // alive at least until on_done returned
  };
  // The reactor for one Connect call. `handler` must outlive the call; `on_done` runs once,
  // when the call is done (after OnEnded, the last call to `handler`). A non-empty
  // `bound_worker_id` is the only worker id the hello may give (the caller's token's).
  static Started Start(grpc::CallbackServerContext* context, StreamHandler& handler,
                       const WorkerStreamOptions& options, std::string bound_worker_id,
                       std::function<void(WorkerStream*)> on_done);

  // The worker id of the hello; empty before it.
  std::string worker_id() const;

  // Whether an Assignment of `attempt_id` for `job_id` was sent on this stream and not yet
  // forgotten: the stream's worker holds it.
  bool WasAssigned(uint64_t attempt_id, const std::string& job_id) const;
  // The attempt ended: forgets its assignment.
  void ForgetAssignment(uint64_t attempt_id);

  bool Send(const v1::CoordinatorMessage& message) override;
  uint64_t Received() const override { return received_.load(std::memory_order_relaxed); }
  void Close(const std::string& reason) override;

  // Ends the call with `status` once the write in flight is done (queued messages not yet
  // written are dropped). Later calls change nothing.
  void Finish(const grpc::Status& status);
  // One message handed to OnMessage is handled: reading may go on.
  void Processed();

 private:
  class CallReactor;

  WorkerStream(grpc::CallbackServerContext* context, StreamHandler& handler,
               const WorkerStreamOptions& options, std::string bound_worker_id,
               std::function<void(WorkerStream*)> on_done);

  // Reactions, forwarded by the reactor.
  void ReadDone(bool ok);
  void WriteDone(bool ok);
  void Cancelled();
  void Done();

  bool SendLocked(const v1::CoordinatorMessage& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `cancel_write`: a write in flight may never end (the worker stopped reading), so the call
  // is cancelled rather than waited for.
  void FinishLocked(const grpc::Status& status, bool cancel_write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  grpc::CallbackServerContext* const context_;  // valid while reactor_ is set
  StreamHandler& handler_;
  const WorkerStreamOptions options_;
  const std::string bound_worker_id_;  // empty: any
  const std::function<void(WorkerStream*)> on_done_;

  std::atomic<uint64_t> received_{0};

  mutable absl::Mutex mu_;
  CallReactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;  // null once the call is done
  std::string worker_id_ ABSL_GUARDED_BY(mu_);           // set by the hello
  // Attempts assigned on this stream, with their job ids, until they end.
  absl::flat_hash_map<uint64_t, std::string> assigned_ ABSL_GUARDED_BY(mu_);
  v1::WorkerMessage in_ ABSL_GUARDED_BY(mu_);  // the read in flight fills it
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool read_ended_ ABSL_GUARDED_BY(mu_) = false;
  // A read message is being handed over: the next read waits, so messages arrive in order.
  bool handing_over_ ABSL_GUARDED_BY(mu_) = false;
  int unprocessed_ ABSL_GUARDED_BY(mu_) = 0;
  // Front: the write in flight while writing_; a deque keeps its address as others are added.
  std::deque<v1::CoordinatorMessage> outgoing_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_after_write_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Finish was called, or must not be
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SERVICE_WORKER_STREAM_H_
