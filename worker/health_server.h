// The worker's health endpoints for an orchestrator's probes (Kubernetes, Slurm scripts):
//   GET /healthz  200 "ok" while the process serves requests (liveness);
//   GET /readyz   200 "ready" when `readiness()` is OK (the worker can take work), else 503
//                 with its message: "not connected to the coordinator", "cannot start
//                 trainers: ..." (readiness).
// Plain HTTP, no token: the answers carry nothing but these words. cpp-httplib serves them on
// a thread of its own.
//
// Thread-safety: Start and the destructor from one thread; `readiness` is called on the
// server's threads and must be thread-safe.
#ifndef ABLATE_WORKER_HEALTH_SERVER_H_
#define ABLATE_WORKER_HEALTH_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace ablate::worker {

class HealthServer {
 public:
  // Listens on address "HOST:PORT" (PORT 0: any free port). InvalidArgument for an address
  // without a port; Unavailable when it cannot bind.
  static absl::StatusOr<std::unique_ptr<HealthServer>> Start(
      const std::string& address, std::function<absl::Status()> readiness);
  ~HealthServer();  // stops serving and joins the thread
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  int port() const { return port_; }

 private:
  HealthServer() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_HEALTH_SERVER_H_
