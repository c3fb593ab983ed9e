// CoordinatorServer owns every part of the coordinator process, in dependency order: the
// token table, the database's instance lock, the change feed, the store (publishing to the
// feed), telemetry, the scheduler, the API and the gRPC services over it, the gRPC server and
// the HTTP server. Start() builds and starts them in that order; Shutdown() stops them in
// reverse, joining every thread, so nothing outlives what it borrows. Beside SweepService and
// WorkerService, the gRPC server answers the standard health service (grpc.health.v1.Health)
// and server reflection, both without a token (server.cc says why).
//
// Thread safety: Start() and Shutdown() are called once each, from the owning thread; the
// port accessors are safe after Start() returned.
#ifndef ABLATE_COORDINATOR_SERVER_H_
#define ABLATE_COORDINATOR_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace ablate::auth {
class Authenticator;
}  // namespace ablate::auth

namespace ablate::coordinator {

class ChangeFeed;
class HttpServer;
class InstanceLock;
class LogTails;
class Scheduler;
class Store;
class SweepApi;
class TuningDriver;
class SweepServiceImpl;
class Telemetry;
class WorkerServiceImpl;

struct CoordinatorOptions {
  std::string grpc_address = "127.0.0.1:7070";  // host:port; port 0 picks a free one
  std::string http_address = "127.0.0.1:8080";  // host:port; port 0 picks a free one
  std::string db_path = "runs/ablate.db";       // its folder must exist
  std::string web_dir;                          // empty: no static files
  absl::Duration lease_timeout = absl::Seconds(30);
  int max_worker_streams = 4096;  // WorkerService streams open at once; more are refused
  // Workers disconnected for longer than this leave ListWorkers and the dashboard.
  absl::Duration worker_retention = absl::Hours(24);
  // Bearer tokens and their roles (common/auth/tokens.h gives the file's format). Every gRPC
  // method and HTTP API route checks the caller's token against it. Empty: no token is checked,
  // for in-process tests of other concerns only; the ablate-coordinator binary refuses to
  // start without one.
  std::string token_file;
  // Whether GET /metrics needs a viewer or user token too (Prometheus then sends one).
  bool metrics_need_token = true;
  // HTTP threads (HttpOptions::threads) and how long a client may take to send one request
  // before its connection is closed (HttpOptions::request_timeout).
  size_t http_threads = 128;
  absl::Duration http_request_timeout = absl::Seconds(30);
  // PEM files. With a certificate and key, gRPC and HTTP serve TLS only. With a client CA too,
  // gRPC asks every client for a certificate and accepts only those the CA signed (workers'
  // mutual TLS; HTTP clients, browsers included, are not asked).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
};

class CoordinatorServer {
 public:
  // `clock` must outlive the server.
  explicit CoordinatorServer(CoordinatorOptions options, Clock& clock = RealClock());
  ~CoordinatorServer();  // Shutdown()s
  CoordinatorServer(const CoordinatorServer&) = delete;
  CoordinatorServer& operator=(const CoordinatorServer&) = delete;

  // Locks the database (one coordinator per database), opens the store, rebuilds the
  // scheduler's view from it and binds both listeners, each port this process's alone. On error
  // (a database another coordinator holds, a store that does not open, an address that cannot
  // be bound) whatever started is stopped again.
  absl::Status Start();
  // Stops accepting, ends worker streams and watches, finishes requests in flight, stops the
  // scheduler and closes the store. Idempotent.
  void Shutdown();

  // Reads the token file again (SIGHUP): new tokens work and removed ones stop working from the
  // next call on, and a worker's open stream whose token was removed is ended at once, its
  // attempts ended LOST and their jobs queued again without waiting for its lease; so are those
  // of a disconnected worker whose last stream's token was removed or, whatever stream it had
  // (one before a restart of the coordinator included), whose id no token grants any more. On
  // error the old tokens stay and the error is returned. OK when no token file is used. Blocks
  // for store commits: call it from a thread that may block, never a gRPC reaction.
  absl::Status ReloadTokens();

  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }

 private:
  const CoordinatorOptions options_;
  Clock& clock_;

  // Declared in dependency order: members are destroyed bottom-up.
  std::unique_ptr<auth::Authenticator> authenticator_;  // null without a token file
  std::unique_ptr<InstanceLock> lock_;
  std::unique_ptr<ChangeFeed> feed_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Telemetry> telemetry_;
  std::unique_ptr<LogTails> log_tails_;  // the scheduler's lost attempts store their tails
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<SweepApi> api_;
  std::unique_ptr<TuningDriver> tuning_;  // runs tuned sweeps' promotions
  std::unique_ptr<SweepServiceImpl> sweep_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<HttpServer> http_server_;
  int grpc_port_ = 0;
  int http_port_ = 0;
};

struct HostPort {
  std::string host;
  int port = 0;
};

// Splits "host:port" ("[::1]:8080" for IPv6, brackets dropped). InvalidArgument when the host
// or port is missing or the port is not a number in [0, 65535].
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SERVER_H_
