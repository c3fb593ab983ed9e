// HttpServer owns the coordinator's HTTP listener (cpp-httplib) and the thread that runs it:
//   GET  /healthz                  200 "ok"
//   GET  /metrics                  Prometheus text (Telemetry::Scrape)
//   GET  /api/v1/sweeps            ListSweepsResponse
//   GET  /api/v1/sweeps/{id}       Sweep ({id} may be a name exactly one sweep has)
//   GET  /api/v1/sweeps/{id}/jobs  ListJobsResponse, a page: ?page_size=100&page_token=...,
//                                  ?state=failed,cancelled (job_reads.h)
//   GET  /api/v1/sweeps/{id}/events  WatchSweep as server-sent events (event_stream.h)
//   GET  /api/v1/jobs/{id}         GetJobResponse; ?metrics=train/loss,eval/loss&max_points=200,
//                                  and the names asked that the job has no series of
//   GET  /api/v1/jobs/{id}/log     JobLog: the tail of the job's log its worker last sent
//   GET  /api/v1/whoami            WhoAmIResponse: the role of the request's token
//   GET  /api/v1/workers           ListWorkersResponse
//   POST /api/v1/sweeps            SubmitSweepRequest -> SubmitSweepResponse
//   POST /api/v1/cancel            CancelRequest -> CancelResponse
//   POST /api/v1/sweeps/{sweep}/retry  RetryJobsRequest -> RetryJobsResponse; {sweep} is an
//                                  id or a unique name; the body names job ids or states:
//                                  {"jobIds": [...]} or {"states": ["JOB_STATE_FAILED"]}
//   GET  / and /static/...         files of the web directory (the built dashboard); without
//                                  an index.html there, GET / is a 503 page saying how to build it
// A query parameter is refused when the endpoint does not take it, or when it takes one value
// and is given two (query_params.h); list filters take repeats and commas alike.
// Every request passes request_guard.h first: tokens for the API (and /metrics), the JSON
// content type and a matching origin for state-changing requests.
// The JSON API is protobuf's JSON mapping of sweep_service.proto (camelCase names, every field
// printed) answered by the same SweepApi as the gRPC service. Errors are
// {"error": "...", "code": "NOT_FOUND"} with the matching HTTP status.
//
// Thread safety: Start() and Stop() are called by the owner, once each, from one thread;
// requests are served on httplib's worker threads.
#ifndef ABLATE_COORDINATOR_HTTP_HTTP_SERVER_H_
#define ABLATE_COORDINATOR_HTTP_HTTP_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/auth/tokens.h"
#include "common/clock.h"
#include "coordinator/api/sweep_api.h"
#include "coordinator/http/connection_deadlines.h"
#include "coordinator/http/event_stream.h"
#include "coordinator/telemetry/telemetry.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace ablate::coordinator {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 picks a free port; port() tells which
  // Served at / and /static. A directory without index.html leaves the API and health
  // endpoints, and a page at / saying how to build the dashboard.
  std::string web_dir;
  // Connections waiting to be accepted; the kernel caps it at net.core.somaxconn (4096 on
  // current Linux). httplib's own is 5, which makes a burst of new connections wait a second
  // for the client's SYN retry.
  int listen_backlog = 1024;
  // Requests served on one connection before the server closes it (httplib's default is 5,
  // which makes a polling dashboard reconnect every five requests).
  size_t keep_alive_max_requests = 10'000;
  // Threads serving connections. Each open connection holds one while it is kept alive, and
  // each event stream (/events) holds one for as long as it lasts.
  size_t threads = 128;
  // Largest request body read; a longer one is answered 413 without being read whole. A
  // SubmitSweepRequest of a large grid is tens of kilobytes.
  size_t max_body_bytes = 4 << 20;
  // How long a client may take to send one request (connection_deadlines.h); past it the
  // connection is closed, so slow or idle clients cannot hold every thread.
  absl::Duration request_timeout = absl::Seconds(30);
  // Serves HTTPS when both files are given.
  HttpTls tls;
  EventStreamOptions events;
  // Borrowed, must outlive the server; null checks no tokens (in-process tests only).
  const auth::Authenticator* authenticator = nullptr;
  bool metrics_need_token = true;  // false: GET /metrics is open, as /healthz
};

class HttpServer {
 public:
  // `api`, `telemetry` and `clock` must outlive the server.
  HttpServer(SweepApi& api, Telemetry& telemetry, HttpOptions options, Clock& clock = RealClock());
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving. Unavailable when the address cannot be bound.
  absl::Status Start();
  // The bound port, after Start().
  int port() const { return port_; }
  // Stops listening, finishes requests in flight and joins the thread. Idempotent.
  void Stop();

 private:
  void Route();
  // Gives httplib's bodiless refusals (413, 414, 400, 404) the API's JSON error naming the limit.
  void ExplainRefusal(httplib::Response& res) const;

  // Constant after construction.
  SweepApi& api_;
  Telemetry& telemetry_;
  const HttpOptions options_;
  EventStreams events_;
  ConnectionDeadlines deadlines_;  // outlives server_, whose connections it watches

  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  int listen_fd_ = -1;  // owned by server_; set while it binds
  std::thread thread_;  // runs server_->listen_after_bind()
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_HTTP_HTTP_SERVER_H_
