#include "coordinator/server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>

#include "ablate/v1/sweep_service.grpc.pb.h"
#include "ablate/v1/worker.grpc.pb.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/auth/tls.h"
#include "common/auth/tokens.h"
#include "common/log.h"
#include "coordinator/api/log_tails.h"
#include "coordinator/api/sweep_api.h"
#include "coordinator/api/tuning_driver.h"
#include "coordinator/feed/change_feed.h"
#include "coordinator/http/http_server.h"
#include "coordinator/instance_lock.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/service/sweep_service.h"
#include "coordinator/service/worker_service.h"
#include "coordinator/store/store.h"
#include "coordinator/telemetry/telemetry.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace ablate::coordinator {
namespace {

// How long unary calls in flight may take to finish when the server stops; streams are
// cancelled at once.
constexpr auto kShutdownGrace = std::chrono::seconds(2);

// Keepalive pings find workers whose connection died without a FIN (a node that lost power),
// so their streams end and their leases start.
void SetKeepalive(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Workers ping too; allow it as often as every 5 s instead of refusing them as abusive.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5'000);
}

// gRPC sets SO_REUSEPORT by default, which let a second coordinator bind the first one's port
// and take half its connections. The port is this process's alone.
void UseExclusivePort(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

// The standard health service (grpc.health.v1) and server reflection, both answered without a
// token. Health is what load balancers and Kubernetes probes ask, and they carry no token.
// Reflection describes the schema only, which is public in proto/, never sweeps or jobs;
// tools such as grpcurl then list and call methods without the .proto files, and every
// method they call still checks the caller's token. Both settings are process-wide and must
// precede the ServerBuilder.
void EnableHealthAndReflection() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
}

absl::Status WithContext(const absl::Status& status, absl::string_view context) {
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

// What a user can do about a failed bind of the address given with `flag`; empty when the
// error names no likely cause.
std::string BindAdvice(int error, absl::string_view flag) {
  switch (error) {
    case EADDRINUSE:
      return absl::StrCat("stop the program that listens there, or give ", flag,
                          " another port (port 0 picks a free one)");
    case EADDRNOTAVAIL:
      return absl::StrCat("the host is not an address of this machine; give ", flag,
                          " one that is (0.0.0.0 listens on all)");
    case EACCES:
      return absl::StrCat("ports below 1024 need privileges; give ", flag,
                          " a port of 1024 or more");
    default:
      return "";
  }
}

// Why no TCP listener on `address` (given with `flag`) can be had, found by binding one as the
// servers would (gRPC and httplib say only that they failed): "Address already in use",
// "Cannot assign requested address" (a host that is not this machine's), "Permission denied"
// (a port below 1024), each with what to do. Like gRPC, which listens on every address the
// host resolves to and fails only when none binds, it names the first address's problem only
// when none of them binds. Empty when one binds now, or the host does not resolve.
std::string BindProblem(const HostPort& address, absl::string_view flag) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port = absl::StrCat(address.port);
  if (getaddrinfo(address.host.empty() ? nullptr : address.host.c_str(), port.c_str(), &hints,
                  &found) != 0) {
    return "";
  }
  int first_error = 0;
  bool bound = false;
  for (const addrinfo* candidate = found; candidate != nullptr && !bound;
       candidate = candidate->ai_next) {
    const int fd = socket(candidate->ai_family, candidate->ai_socktype, candidate->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, candidate->ai_addr, candidate->ai_addrlen) == 0) {
      bound = true;
    } else if (first_error == 0) {
      first_error = errno;
    }
    close(fd);
  }
  freeaddrinfo(found);
  if (bound || first_error == 0) return "";
  std::string problem = std::strerror(first_error);
  if (std::string advice = BindAdvice(first_error, flag); !advice.empty()) {
    absl::StrAppend(&problem, "; ", advice);
  }
  return problem;
}

// `status` with BindProblem's reason appended, where there is one.
absl::Status WithBindProblem(const absl::Status& status, const HostPort& address,
                             absl::string_view flag) {
  const std::string problem = BindProblem(address, flag);
  if (problem.empty()) return status;
  return absl::Status(status.code(), absl::StrCat(status.message(), ": ", problem));
}

// gRPC's core logs a raw line of its own when its bind fails, before BuildAndStart returns,
// so the user would read it beside our error. Binding first, as gRPC is about to, answers the
// common failures (a port another program holds, a host not of this machine) in our words
// alone, without touching gRPC's process-wide logging: lowering its verbosity around
// BuildAndStart would also hide other threads' gRPC errors meanwhile, and its logging API
// differs between gRPC releases. A port taken between this probe and gRPC's own bind still
// fails, with gRPC's line before ours. Called just before BuildAndStart, to keep that short.
absl::Status ProbeGrpcAddress(const std::string& address, const HostPort& parsed) {
  const std::string problem = BindProblem(parsed, "--listen");
  if (problem.empty()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", address, ": ", problem));
}

}  // namespace

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "': expected host:port, as 127.0.0.1:8080"));
  }
  HostPort result;
  absl::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  result.host = std::string(host);
  if (!absl::SimpleAtoi(address.substr(colon + 1), &result.port) || result.port < 0 ||
      result.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "': the port must be a number in [0, 65535]"));
  }
  return result;
}

CoordinatorServer::CoordinatorServer(CoordinatorOptions options, Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

absl::Status CoordinatorServer::Start() {
  absl::StatusOr<HostPort> http = ParseHostPort(options_.http_address);
  if (!http.ok()) return WithContext(http.status(), "--http");

  if (!options_.token_file.empty()) {
    absl::StatusOr<std::unique_ptr<auth::Authenticator>> authenticator =
        auth::Authenticator::FromFile(options_.token_file);
    if (!authenticator.ok()) return WithContext(authenticator.status(), "--token-file");
    authenticator_ = *std::move(authenticator);
  }
  absl::StatusOr<std::unique_ptr<InstanceLock>> lock = InstanceLock::Acquire(options_.db_path);
  if (!lock.ok()) return lock.status();
  lock_ = *std::move(lock);
  feed_ = std::make_unique<ChangeFeed>(clock_);
  StoreOptions store_options;
  store_options.feed = feed_.get();
  store_options.worker_retention = options_.worker_retention;
  absl::StatusOr<std::unique_ptr<Store>> store =
      Store::Open(options_.db_path, clock_, store_options);
  if (!store.ok()) {
    Shutdown();
    return WithContext(store.status(), absl::StrCat("database ", options_.db_path));
  }
  store_ = *std::move(store);
  telemetry_ = std::make_unique<Telemetry>(*store_);

  SchedulerOptions scheduling;
  scheduling.lease_timeout = options_.lease_timeout;
  // Notice an expired lease within a quarter of its length, and at least once a second.
  scheduling.tick = std::min(absl::Seconds(1), options_.lease_timeout / 4);
  log_tails_ = std::make_unique<LogTails>(clock_, store_.get());
  scheduling.attempt_lost = [tails = log_tails_.get(), telemetry = telemetry_.get()](
                                const std::string& job_id, uint64_t attempt_id) {
    tails->Ended(job_id, attempt_id);
    telemetry->CountAttemptEnded(v1::ATTEMPT_STATE_LOST);
  };
  scheduler_ = std::make_unique<Scheduler>(*store_, clock_, scheduling);
  if (absl::Status s = scheduler_->Start(); !s.ok()) {
    Shutdown();
    return WithContext(s, "rebuilding the scheduler from the store");
  }

  api_ = std::make_unique<SweepApi>(*store_, *feed_, *scheduler_, *telemetry_, clock_,
                                    log_tails_.get());
  tuning_ = std::make_unique<TuningDriver>(*store_, *scheduler_, *feed_);
  if (absl::Status s = tuning_->Start(); !s.ok()) {
    Shutdown();
    return WithContext(s, "resuming the sweeps' tuning from the store");
  }
  api_->SetTuningDriver(tuning_.get());
  sweep_service_ = std::make_unique<SweepServiceImpl>(*api_, authenticator_.get());
  WorkerServiceOptions workers;
  workers.max_streams = options_.max_worker_streams;
  workers.log_tails = log_tails_.get();
  worker_service_ = std::make_unique<WorkerServiceImpl>(*store_, *scheduler_, *telemetry_,
                                                        authenticator_.get(), workers);

  EnableHealthAndReflection();
  grpc::ServerBuilder builder;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      auth::GrpcServerCredentials(
          {options_.tls_cert_file, options_.tls_key_file, options_.tls_client_ca_file});
  if (!credentials.ok()) {
    Shutdown();
    return credentials.status();
  }
  const absl::StatusOr<HostPort> listen = ParseHostPort(options_.grpc_address);
  if (listen.ok()) {
    if (absl::Status s = ProbeGrpcAddress(options_.grpc_address, *listen); !s.ok()) {
      Shutdown();
      return s;
    }
  }
  builder.AddListeningPort(options_.grpc_address, *credentials, &grpc_port_);
  builder.RegisterService(sweep_service_.get());
  builder.RegisterService(worker_service_.get());
  SetKeepalive(builder);
  UseExclusivePort(builder);
  // gRPC's own default, stated: no request (a SubmitSweep of a large grid is tens of kilobytes,
  // a worker's report batch less) may make the coordinator hold more than this at once.
  builder.SetMaxReceiveMessageSize(4 << 20);
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || grpc_port_ == 0) {
    Shutdown();
    const absl::Status failed =
        absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", options_.grpc_address));
    return listen.ok() ? WithBindProblem(failed, *listen, "--listen") : failed;
  }
  // The empty name, the whole server, is SERVING by default; each service is named too.
  for (const char* service :
       {v1::SweepService::service_full_name(), v1::WorkerService::service_full_name()}) {
    grpc_server_->GetHealthCheckService()->SetServingStatus(service, true);
  }

  HttpOptions http_options;
  http_options.host = http->host;
  http_options.port = http->port;
  http_options.web_dir = options_.web_dir;
  http_options.authenticator = authenticator_.get();
  http_options.metrics_need_token = options_.metrics_need_token;
  http_options.threads = options_.http_threads;
  http_options.request_timeout = options_.http_request_timeout;
  http_options.tls = {options_.tls_cert_file, options_.tls_key_file};
  http_server_ = std::make_unique<HttpServer>(*api_, *telemetry_, http_options, clock_);
  if (absl::Status s = http_server_->Start(); !s.ok()) {
    Shutdown();
    return s.code() == absl::StatusCode::kUnavailable ? WithBindProblem(s, *http, "--http") : s;
  }
  http_port_ = http_server_->port();
  if (lock_ != nullptr) {
    if (absl::Status s = lock_->Describe(grpc_port_, http_port_); !s.ok()) {
      Shutdown();
      return s;
    }
  }
  ABLATE_LOG(INFO) << "coordinator listening grpc="
                   << (listen.ok() ? absl::StrCat(listen->host, ":", grpc_port_)
                                   : options_.grpc_address)
                   << " http=" << http->host << ":" << http_port_ << " db=" << options_.db_path
                   << " web_dir=" << options_.web_dir;
  return absl::OkStatus();
}

absl::Status CoordinatorServer::ReloadTokens() {
  if (authenticator_ == nullptr) return absl::OkStatus();
  if (absl::Status s = authenticator_->Reload(); !s.ok()) return s;
  if (worker_service_ == nullptr) return absl::OkStatus();
  // A revoked worker's reconnect is refused, so its jobs are not left to wait out its lease.
  // This runs on the caller's thread (main's signal loop), never in a gRPC reaction, so the
  // scheduler may block on the store here.
  for (const std::string& worker_id : worker_service_->CloseRevoked()) {
    scheduler_->LoseWorker(worker_id, "its token was revoked");
  }
  // The service knows the token of streams that ended in this process only; a worker restored
  // from the database after a restart is judged by whether any token still grants its id. One
  // the loop above lost already is no longer known to the scheduler.
  for (const std::string& worker_id : scheduler_->DisconnectedWorkers()) {
    if (!authenticator_->GrantsWorker(worker_id)) {
      scheduler_->LoseWorker(worker_id, "its token was revoked");
    }
  }
  return absl::OkStatus();
}

void CoordinatorServer::Shutdown() {
  if (http_server_ != nullptr) http_server_->Stop();
  if (grpc_server_ != nullptr) {
    // Probes see NOT_SERVING while calls in flight finish.
    grpc_server_->GetHealthCheckService()->Shutdown();
    sweep_service_->Shutdown();
    worker_service_->Shutdown();
    grpc_server_->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
    grpc_server_->Wait();
    worker_service_->Stop();
  }
  if (tuning_ != nullptr) tuning_->Stop();
  if (scheduler_ != nullptr) scheduler_->Stop();
  http_server_.reset();
  grpc_server_.reset();
  worker_service_.reset();
  sweep_service_.reset();
  api_.reset();
  tuning_.reset();
  scheduler_.reset();
  log_tails_.reset();
  telemetry_.reset();
  if (feed_ != nullptr) feed_->Close();
  if (store_ != nullptr) {
    store_.reset();
    ABLATE_LOG(INFO) << "coordinator stopped";
  }
  feed_.reset();
  lock_.reset();
  authenticator_.reset();
}

}  // namespace ablate::coordinator
