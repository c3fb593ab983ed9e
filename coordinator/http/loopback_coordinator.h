// For the HTTP tests: a whole CoordinatorServer on loopback ports the kernel picks, with its
// database in `dir`. Test-only; header-only.
#ifndef ABLATE_COORDINATOR_HTTP_LOOPBACK_COORDINATOR_H_
#define ABLATE_COORDINATOR_HTTP_LOOPBACK_COORDINATOR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/server.h"
#include "coordinator/testing/fixtures.h"

namespace ablate::coordinator::testing {

// Started, or the reason it did not start. `web_dir` empty serves the API only; `token_file`
// empty checks no tokens.
inline absl::StatusOr<std::unique_ptr<CoordinatorServer>> StartLoopbackCoordinator(
    const TempDir& dir, const std::string& web_dir = "", const std::string& token_file = "") {
  CoordinatorOptions options;
  options.grpc_address = "127.0.0.1:0";
  options.http_address = "127.0.0.1:0";
  options.db_path = dir.File("ablate.db");
  options.web_dir = web_dir;
  options.token_file = token_file;
  auto server = std::make_unique<CoordinatorServer>(options);
  if (absl::Status started = server->Start(); !started.ok()) return started;
  return server;
}

}  // namespace ablate::coordinator::testing

#endif  // ABLATE_COORDINATOR_HTTP_LOOPBACK_COORDINATOR_H_
