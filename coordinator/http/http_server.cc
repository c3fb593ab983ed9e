#include "coordinator/http/http_server.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "coordinator/http/job_reads.h"
#include "coordinator/http/json_reply.h"
#include "coordinator/http/query_params.h"
#include "coordinator/http/request_guard.h"

namespace ablate::coordinator {
namespace {

// GET / when the web directory holds no built dashboard (web/ is a TypeScript app that Node
// builds; the coordinator itself never needs Node).
constexpr char kDashboardNotBuilt[] = R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ablate: dashboard not built</title></head>
<body><h1>The dashboard is not built</h1>
<p>This coordinator serves its JSON API under <code>/api/v1/</code>, but the folder it serves the
dashboard from (<code>--web-dir</code>) holds no <code>index.html</code>.</p>
<p>Build it with Node.js 18 or newer and npm: <code>make</code> (or
<code>cmake --build build --target web</code>) writes it to <code>build/web/dist</code>, which the
coordinator serves by default; or run <code>npm ci &amp;&amp; npm run build</code> in
<code>web/</code> and start the coordinator with <code>--web-dir web/dist</code>.</p>
</body></html>
)";

// The listening socket's options, in place of httplib's default, which sets SO_REUSEPORT: with
// it a second coordinator could bind the same port and take half the connections. SO_REUSEADDR
// alone still lets a restarted coordinator bind while old connections sit in TIME_WAIT.
// TCP_NODELAY is set here too, and Linux copies it to every accepted socket: without it, a
// response written as headers then body waits for the client's delayed ACK (about 40 ms) on a
// kept-alive connection (Nagle's algorithm). `*listening` receives the socket's descriptor.
httplib::SocketOptions ListenSocketOptions(int* listening) {
  return [listening](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    *listening = sock;
  };
}

// A POST route whose body is `Request` in protobuf's JSON mapping: answers what `call` returns
// for the request it parsed (and the httplib request, for the path's matches), or the reason
// the body does not parse.
template <typename Request, typename Call>
httplib::Server::Handler JsonPost(Call call) {
  return [call](const httplib::Request& req, httplib::Response& res) {
    Request request;
    if (absl::Status parsed = ParseJsonBody(req.body, request); !parsed.ok()) {
      return ReplyError(parsed, res);
    }
    Reply(call(req, request), res);
  };
}

// A 405 in JSON (with UNIMPLEMENTED, as grpc-gateway answers it): `allow` the methods the path
// takes, `takes` the words that say so.
httplib::Server::Handler NotAllowed(std::string allow, std::string takes) {
  return [allow = std::move(allow), takes = std::move(takes)](const httplib::Request& req,
                                                              httplib::Response& res) {
    ReplyError(absl::UnimplementedError(absl::StrCat(req.method, " ", req.path, ": ", takes)), res);
    res.status = 405;
    res.set_header("Allow", allow);
  };
}

// The route label of a response's request (Telemetry::CountHttpResponse): a few fixed words, so
// that paths holding ids, or made up by a client, add no series.
std::string_view RouteLabel(std::string_view path) {
  if (path == "/metrics") return "metrics";
  if (path == "/healthz") return "healthz";
  if (path.starts_with("/api/")) return path.ends_with("/events") ? "events" : "api";
  return "dashboard";
}

}  // namespace

HttpServer::HttpServer(SweepApi& api, Telemetry& telemetry, HttpOptions options, Clock& clock)
    : api_(api),
      telemetry_(telemetry),
      options_(std::move(options)),
      events_(api, clock, options_.events),
      deadlines_(options_.request_timeout) {}

HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::Start() {
  absl::StatusOr<std::unique_ptr<httplib::Server>> server =
      deadlines_.NewServer(options_.tls, options_.threads);
  if (!server.ok()) return server.status();
  server_ = *std::move(server);
  server_->set_socket_options(ListenSocketOptions(&listen_fd_));
  server_->set_tcp_nodelay(true);
  server_->set_keep_alive_max_count(options_.keep_alive_max_requests);
  server_->set_payload_max_length(options_.max_body_bytes);
  // httplib's own 5 s for each read would cut a request short of the request_timeout that
  // ConnectionDeadlines gives it whole.
  server_->set_read_timeout(absl::ToChronoMicroseconds(options_.request_timeout));
  // httplib's refusals (413, 414, 400) come with no body: say which limit, as the API's errors do.
  server_->set_error_handler([this](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) ExplainRefusal(res);
  });
  server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    deadlines_.RequestRead(req);
    absl::Status admitted = AdmitRequest(req, options_.authenticator, options_.metrics_need_token);
    if (admitted.ok()) return httplib::Server::HandlerResponse::Unhandled;
    if (absl::IsUnauthenticated(admitted)) res.set_header("WWW-Authenticate", "Bearer");
    ReplyError(admitted, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  server_->set_post_routing_handler([this](const httplib::Request&, httplib::Response& res) {
    deadlines_.ResponseStarting(res);
  });
  // Called once a response is written, refusals and errors included.
  server_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    telemetry_.CountHttpResponse(RouteLabel(req.path), res.status);
  });
  Route();
  if (std::filesystem::exists(std::filesystem::path(options_.web_dir) / "index.html")) {
    // /static first: a mount point is matched by prefix, in the order mounts were made.
    server_->set_mount_point("/static", options_.web_dir);
    server_->set_mount_point("/", options_.web_dir);
  } else {
    ABLATE_LOG(WARNING) << "dashboard not built, serving the API and a page saying how to build "
                           "it web_dir="
                        << options_.web_dir;
    server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content(kDashboardNotBuilt, "text/html; charset=utf-8");
    });
  }
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.host);
  } else if (server_->bind_to_port(options_.host, options_.port)) {
    port_ = options_.port;
  } else {
    port_ = -1;
  }
  if (port_ <= 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen for HTTP on ", options_.host, ":", options_.port));
  }
  // httplib listens with a backlog of 5, compiled into its library; on Linux a second listen()
  // on a listening socket only sets the new backlog, so bursts of connections are not refused
  // or left to retry after a second.
  if (::listen(listen_fd_, options_.listen_backlog) != 0) {
    server_.reset();
    return absl::InternalError(
        absl::StrCat("listen(backlog=", options_.listen_backlog, ") failed on the HTTP socket"));
  }
  deadlines_.Start(port_);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() only reaches a server that is already running; wait for it so Stop() cannot miss.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!server_->is_running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  if (!server_->is_running()) {
    return absl::InternalError("HTTP server did not start within 5 s");
  }
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (server_ == nullptr) return;
  // httplib's stop() waits for its threads, and an event stream holds one until told to end.
  events_.Stop();
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
  deadlines_.Stop();
}

void HttpServer::ExplainRefusal(httplib::Response& res) const {
  const int status = res.status;
  switch (status) {
    case 413:
      ReplyError(absl::ResourceExhaustedError(
                     absl::StrCat("the request body is larger than ", options_.max_body_bytes >> 10,
                                  " KiB, the most this coordinator reads")),
                 res);
      break;
    case 414:
      ReplyError(absl::ResourceExhaustedError(absl::StrCat(
                     "the URL is longer than ", CPPHTTPLIB_REQUEST_URI_MAX_LENGTH >> 10,
                     " KiB, the most this coordinator reads")),
                 res);
      break;
    case 400:
      ReplyError(absl::InvalidArgumentError(absl::StrCat(
                     "the request could not be read: it is not HTTP/1.1, or it was not sent "
                     "whole within ",
                     absl::FormatDuration(options_.request_timeout))),
                 res);
      break;
    case 404:
      ReplyError(absl::NotFoundError("no such page or endpoint"), res);
      break;
    default:
      return;
  }
  res.status = status;  // ReplyError's mapping of the code has no 413 or 414
}

void HttpServer::Route() {
  httplib::Server& s = *server_;
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain");
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(telemetry_.Scrape(), "text/plain; version=0.0.4");
  });
  s.Get("/api/v1/sweeps", [this](const httplib::Request& req, httplib::Response& res) {
    if (absl::Status s = CheckQueryParams(req, {}); !s.ok()) return ReplyError(s, res);
    Reply(api_.ListSweeps({}), res);
  });
  s.Get(R"(/api/v1/sweeps/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    if (absl::Status s = CheckQueryParams(req, {}); !s.ok()) return ReplyError(s, res);
    v1::GetSweepRequest request;
    request.set_sweep_id(req.matches[1]);
    Reply(api_.GetSweep(request), res);
  });
  s.Get(R"(/api/v1/sweeps/([^/]+)/jobs)",
        [this](const httplib::Request& req, httplib::Response& res) {
          ServeListJobs(api_, req, res);
        });
  s.Get(R"(/api/v1/sweeps/([^/]+)/events)",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (absl::Status s = CheckQueryParams(req, {{"last_event_id"}}); !s.ok()) {
            return ReplyError(s, res);
          }
          events_.Serve(req, res);
        });

  s.Get(R"(/api/v1/jobs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    ServeGetJob(api_, req, res);
  });
  s.Get(R"(/api/v1/jobs/([^/]+)/log)", [this](const httplib::Request& req, httplib::Response& res) {
    if (absl::Status s = CheckQueryParams(req, {{"attempt_id"}}); !s.ok()) {
      return ReplyError(s, res);
    }
    uint64_t attempt_id = 0;
    if (absl::Status s = ParseUintParam(req, "attempt_id", &attempt_id); !s.ok()) {
      return ReplyError(s, res);
    }
    v1::GetJobLogRequest request;
    request.set_job_id(req.matches[1]);
    request.set_attempt_id(attempt_id);
    Reply(api_.GetJobLog(request), res);
  });
  s.Get("/api/v1/whoami", [this](const httplib::Request& req, httplib::Response& res) {
    // The guard has admitted the token (or there are none to check, which lets anyone act).
    if (absl::Status s = CheckQueryParams(req, {}); !s.ok()) return ReplyError(s, res);
    v1::WhoAmIResponse response;
    response.set_role("user");
    if (options_.authenticator != nullptr) {
      absl::StatusOr<auth::Principal> caller = options_.authenticator->Check(
          req.get_header_value("Authorization"), auth::Access::kRead, "GET /api/v1/whoami");
      if (!caller.ok()) return ReplyError(caller.status(), res);
      response.set_role(std::string(auth::RoleName(caller->role)));
    }
    ReplyJson(response, res);
  });
  s.Get("/api/v1/workers", [this](const httplib::Request& req, httplib::Response& res) {
    if (absl::Status s = CheckQueryParams(req, {}); !s.ok()) return ReplyError(s, res);
    Reply(api_.ListWorkers({}), res);
  });
  s.Post("/api/v1/sweeps",
         JsonPost<v1::SubmitSweepRequest>(
             [this](const httplib::Request&, const v1::SubmitSweepRequest& request) {
               return api_.SubmitSweep(request);
             }));
  s.Post("/api/v1/cancel", JsonPost<v1::CancelRequest>(
                               [this](const httplib::Request&, const v1::CancelRequest& request) {
                                 return api_.Cancel(request);
                               }));
  // The sweep comes from the path; a body naming another one is refused.
  s.Post(R"(/api/v1/sweeps/([^/]+)/retry)",
         JsonPost<v1::RetryJobsRequest>(
             [this](const httplib::Request& req,
                    v1::RetryJobsRequest request) -> absl::StatusOr<v1::RetryJobsResponse> {
               const std::string sweep = req.matches[1];
               if (!request.sweep().empty() && request.sweep() != sweep) {
                 return absl::InvalidArgumentError(absl::StrCat(
                     "sweep: the body names '", request.sweep(), "', the path '", sweep, "'"));
               }
               request.set_sweep(sweep);
               return api_.RetryJobs(request);
             }));
  // The actions read with GET: 405 naming the method they take, not "no endpoint".
  const httplib::Server::Handler post_only =
      NotAllowed("POST", "this endpoint acts, with POST only");
  s.Get("/api/v1/cancel", post_only);
  s.Get(R"(/api/v1/sweeps/([^/]+)/retry)", post_only);
  // Anything else under /api is a JSON 404 too, so API clients never have to parse HTML.
  auto unknown = [](const httplib::Request& req, httplib::Response& res) {
    ReplyError(absl::NotFoundError(absl::StrCat("no API endpoint ", req.method, " ", req.path)),
               res);
  };
  s.Get(R"(/api/.*)", unknown);
  s.Post(R"(/api/.*)", unknown);
  // The API reads with GET and acts with POST: another method is 405.
  const httplib::Server::Handler not_allowed =
      NotAllowed("GET, POST", "the API takes GET and POST only");
  s.Put(R"(/api/.*)", not_allowed);
  s.Delete(R"(/api/.*)", not_allowed);
  s.Patch(R"(/api/.*)", not_allowed);
}

}  // namespace ablate::coordinator
