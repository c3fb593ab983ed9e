// WorkerServiceImpl serves WorkerService.Connect on gRPC's callback API: one WorkerStream
// (reactor) per worker daemon, held open for the daemon's life, over one WorkerManager that
// holds the logic (worker_manager.h says the protocol). It owns the bound on open streams:
// beyond `max_streams` a new Connect is refused with RESOURCE_EXHAUSTED, so a flood of
// connections cannot exhaust the coordinator. Connect needs a token of role worker
// (call_auth.h); the stream's hello must give the worker id that token is bound to.
//
// Thread safety: Connect is called by gRPC from any thread and never blocks; Shutdown() may be
// called from any thread.
#ifndef ABLATE_COORDINATOR_SERVICE_WORKER_SERVICE_H_
#define ABLATE_COORDINATOR_SERVICE_WORKER_SERVICE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "ablate/v1/worker.grpc.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/auth/tokens.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/service/worker_manager.h"
#include "coordinator/service/worker_stream.h"
#include "coordinator/store/store.h"
#include "coordinator/telemetry/telemetry.h"

namespace ablate::coordinator {

struct WorkerServiceOptions {
  int max_streams = 4096;  // open Connect calls; more are refused with RESOURCE_EXHAUSTED
  // How often a worker should send a heartbeat: a sixth of the default 30 s lease, so a few
  // lost heartbeats never cost a lease.
  uint32_t heartbeat_interval_ms = 5000;
  WorkerStreamOptions stream;
  // Borrowed, must outlive the service: where the workers' log tails go; null drops them.
  LogTails* log_tails = nullptr;
};

class WorkerServiceImpl final : public v1::WorkerService::CallbackService {
 public:
  // Everything borrowed must outlive the service; a null `authenticator` checks no tokens.
  WorkerServiceImpl(Store& store, Scheduler& scheduler, Telemetry& telemetry,
                    const auth::Authenticator* authenticator, WorkerServiceOptions options);
  ~WorkerServiceImpl() override;  // Stop()s

  // Ends every open stream with UNAVAILABLE and refuses new ones, so the gRPC server's shutdown
  // does not wait on workers that never stop reading.
  void Shutdown();
  // Runs the reports already received, then stops the manager's thread. Call after the gRPC
  // server stopped.
  void Stop();

  // Ends, with UNAVAILABLE, each open stream whose token the authenticator no longer grants
  // for its worker (after a reload of the token file), so that a revoked worker is cut off now,
  // not at its next reconnect; its reconnect is then refused. Returns the ids of the workers
  // whose streams it ended, and of those with no open stream whose last stream's token it no
  // longer grants (they cannot come back either), for the caller to hand their jobs back
  // (Scheduler::LoseWorker, which ignores a worker it no longer knows): this method never
  // blocks, and so never calls the scheduler itself.
  std::vector<std::string> CloseRevoked();

  grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  // Constant after construction.
  const WorkerServiceOptions options_;
  const auth::Authenticator* const authenticator_;

  WorkerManager manager_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Streams whose call is not done, alive while listed here, with the worker they speak for
  // and the authorization they opened with (to check again on a reload).
  struct Opened {
    std::string worker_id;
    std::string authorization;
  };
  absl::flat_hash_map<WorkerStream*, Opened> streams_ ABSL_GUARDED_BY(mu_);
  // The authorization of each worker's stream that ended last, by worker id, so that a reload
  // that revokes a disconnected worker's token hands its jobs back at once rather than after
  // its lease. An entry leaves once its token is revoked, so there are at most as many as the
  // worker ids the token file grants.
  absl::flat_hash_map<std::string, std::string> ended_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SERVICE_WORKER_SERVICE_H_
