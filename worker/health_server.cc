#include "worker/health_server.h"

#include <httplib.h>

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ablate::worker {

absl::StatusOr<std::unique_ptr<HealthServer>> HealthServer::Start(
    const std::string& address, std::function<absl::Status()> readiness) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--health-http ", address, ": expected HOST:PORT"));
  }
  const std::string host = address.substr(0, colon);
  std::unique_ptr<HealthServer> health(new HealthServer());
  health->server_ = std::make_unique<httplib::Server>();
  httplib::Server& server = *health->server_;
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain");
  });
  server.Get("/readyz",
             [readiness = std::move(readiness)](const httplib::Request&, httplib::Response& res) {
               const absl::Status ready = readiness();
               if (ready.ok()) {
                 res.set_content("ready", "text/plain");
               } else {
                 res.status = 503;
                 res.set_content(std::string(ready.message()), "text/plain");
               }
             });
  if (port == 0) {
    health->port_ = server.bind_to_any_port(host);
  } else {
    health->port_ = server.bind_to_port(host, port) ? port : -1;
  }
  if (health->port_ < 0) {
    return absl::UnavailableError(absl::StrCat("--health-http ", address, ": cannot listen"));
  }
  health->thread_ = std::thread([&server] { server.listen_after_bind(); });
  return health;
}

HealthServer::~HealthServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ablate::worker
