#include "coordinator/http/http_server.h"

#include <httplib.h>

#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace ablate::coordinator {
namespace {

constexpr char kJson[] = "application/json";

// Google's HTTP mapping of the canonical codes.
int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

void ReplyError(const absl::Status& status, httplib::Response& res) {
  google::protobuf::Struct body;
  (*body.mutable_fields())["error"].set_string_value(std::string(status.message()));
  (*body.mutable_fields())["code"].set_string_value(absl::StatusCodeToString(status.code()));
  std::string json;
  google::protobuf::util::MessageToJsonString(body, &json);
  res.status = HttpStatusOf(status.code());
  res.set_content(json, kJson);
}

void ReplyJson(const google::protobuf::Message& message, httplib::Response& res) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string json;
  google::protobuf::util::Status printed =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!printed.ok()) {
    ReplyError(absl::InternalError(std::string(printed.message())), res);
    return;
  }
  res.status = 200;
  res.set_content(json, kJson);
}

template <typename T>
void Reply(const absl::StatusOr<T>& result, httplib::Response& res) {
  if (result.ok()) {
    ReplyJson(*result, res);
  } else {
    ReplyError(result.status(), res);
  }
}

absl::Status ParseBody(const httplib::Request& req, google::protobuf::Message& message) {
  google::protobuf::util::Status parsed =
      google::protobuf::util::JsonStringToMessage(req.body, &message);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("request body is not a ", message.GetTypeName(),
                                                   " in JSON: ", std::string(parsed.message())));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::GetJobRequest> GetJobRequestOf(const httplib::Request& req) {
  v1::GetJobRequest request;
  request.set_job_id(req.matches[1]);
  if (req.has_param("metrics")) {
    for (absl::string_view name :
         absl::StrSplit(req.get_param_value("metrics"), ',', absl::SkipEmpty())) {
      request.add_metric_names(std::string(name));
    }
  }
  if (req.has_param("max_points")) {
    uint32_t max_points = 0;
    if (!absl::SimpleAtoi(req.get_param_value("max_points"), &max_points)) {
      return absl::InvalidArgumentError("max_points: expected a non-negative integer");
    }
    request.set_max_points(max_points);
  }
  return request;
}

}  // namespace

HttpServer::HttpServer(SweepApi& api, Telemetry& telemetry, HttpOptions options)
    : api_(api), telemetry_(telemetry), options_(std::move(options)) {}

HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::Start() {
  server_ = std::make_unique<httplib::Server>();
  // The port is this server's alone: SO_REUSEADDR (rebind over TIME_WAIT after a restart) but
  // not the SO_REUSEPORT cpp-httplib sets by default, which let a second coordinator listen on
  // the first one's port.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof(yes));
  });
  Route();
  if (!options_.web_dir.empty()) {
    // /static first: a mount point is matched by prefix, in the order mounts were made.
    if (!server_->set_mount_point("/static", options_.web_dir) ||
        !server_->set_mount_point("/", options_.web_dir)) {
      ABLATE_LOG(WARNING) << "web directory not found, serving the API only web_dir="
                          << options_.web_dir;
    }
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
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

void HttpServer::Route() {
  httplib::Server& s = *server_;
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain");
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(telemetry_.Scrape(), "text/plain; version=0.0.4");
  });
  s.Get("/api/v1/sweeps", [this](const httplib::Request&, httplib::Response& res) {
    Reply(api_.ListSweeps({}), res);
  });
  s.Get(R"(/api/v1/sweeps/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    v1::GetSweepRequest request;
    request.set_sweep_id(req.matches[1]);
    Reply(api_.GetSweep(request), res);
  });
  s.Get(R"(/api/v1/sweeps/([^/]+)/jobs)",
        [this](const httplib::Request& req, httplib::Response& res) {
          v1::ListJobsRequest request;
          request.set_sweep_id(req.matches[1]);
          Reply(api_.ListJobs(request), res);
        });
  s.Get(R"(/api/v1/jobs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    absl::StatusOr<v1::GetJobRequest> request = GetJobRequestOf(req);
    if (!request.ok()) return ReplyError(request.status(), res);
    Reply(api_.GetJob(*request), res);
  });
  s.Get("/api/v1/workers", [this](const httplib::Request&, httplib::Response& res) {
    Reply(api_.ListWorkers({}), res);
  });
  s.Post("/api/v1/sweeps", [this](const httplib::Request& req, httplib::Response& res) {
    v1::SubmitSweepRequest request;
    if (absl::Status parsed = ParseBody(req, request); !parsed.ok()) {
      return ReplyError(parsed, res);
    }
    Reply(api_.SubmitSweep(request), res);
  });
  s.Post("/api/v1/cancel", [this](const httplib::Request& req, httplib::Response& res) {
    v1::CancelRequest request;
    if (absl::Status parsed = ParseBody(req, request); !parsed.ok()) {
      return ReplyError(parsed, res);
    }
    Reply(api_.Cancel(request), res);
  });
  // Anything else under /api is a JSON 404 too, so API clients never have to parse HTML.
  auto unknown = [](const httplib::Request& req, httplib::Response& res) {
    ReplyError(absl::NotFoundError(absl::StrCat("no API endpoint ", req.method, " ", req.path)),
               res);
  };
  s.Get(R"(/api/.*)", unknown);
  s.Post(R"(/api/.*)", unknown);
}

}  // namespace ablate::coordinator
