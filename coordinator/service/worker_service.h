// WorkerServiceImpl serves WorkerService.Connect: one call per worker daemon, held open for
// the daemon's life. The call's handler thread reads the worker's messages and turns them into
// store changes; the scheduler writes to the worker through the call's WorkerSession.
//
// Protocol, as the worker sees it:
//  1. The first message is hello (else FAILED_PRECONDITION). The worker is recorded as
//     connected, gets a Welcome, and the scheduler may assign to it from then on.
//  2. job_event.started -> the attempt RUNNING; metrics -> stored; finished -> remembered for
//     the attempt's end; checkpoint and log -> logged.
//  3. attempt_ended -> the attempt ends as attempt_policy.h decides, and its slots are free.
//  Reports for an attempt that is no longer current (the store refuses them) are logged and
//  dropped: a late worker never changes a job that moved on, and never loses its stream.
//  4. When the stream ends, the worker is recorded as disconnected and its lease clock starts.
//
// Thread safety: gRPC runs one handler thread per stream; Shutdown() may be called from any
// thread.
#ifndef ABLATE_COORDINATOR_SERVICE_WORKER_SERVICE_H_
#define ABLATE_COORDINATOR_SERVICE_WORKER_SERVICE_H_

#include <cstdint>
#include <string>

#include "ablate/v1/worker.grpc.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/service/worker_session.h"
#include "coordinator/store/store.h"
#include "coordinator/telemetry/telemetry.h"

namespace ablate::coordinator {

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  // Everything borrowed must outlive the service.
  WorkerServiceImpl(Store& store, Scheduler& scheduler, Telemetry& telemetry);

  // Cancels every open stream and refuses new ones with UNAVAILABLE, so the gRPC server's
  // shutdown does not wait on workers that never stop reading.
  void Shutdown();

  grpc::Status Connect(grpc::ServerContext* context, WorkerSession::Stream* stream) override;

 private:
  // The finished events seen on one stream, by attempt id, until the attempt's end.
  using FinishedEvents = absl::flat_hash_map<uint64_t, v1::TrainerFinished>;

  void HandleJobEvent(const v1::JobEvent& event, FinishedEvents& finished);
  void HandleAttemptEnded(const std::string& worker_id, const v1::AttemptEnded& ended,
                          FinishedEvents& finished);

  // Constant after construction.
  Store& store_;
  Scheduler& scheduler_;
  Telemetry& telemetry_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Sessions whose handler is running: their contexts are alive while they are listed here.
  absl::flat_hash_set<WorkerSession*> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SERVICE_WORKER_SERVICE_H_
