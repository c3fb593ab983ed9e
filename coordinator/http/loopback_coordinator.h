// For the HTTP tests: a whole CoordinatorServer on loopback ports the kernel picks, with its
// database in `dir`, and plain sockets to talk to it byte by byte. Test-only; header-only.
#ifndef ABLATE_COORDINATOR_HTTP_LOOPBACK_COORDINATOR_H_
#define ABLATE_COORDINATOR_HTTP_LOOPBACK_COORDINATOR_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

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

// A plain blocking TCP connection to 127.0.0.1:port whose reads give up after 5 s, or -1.
inline int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return fd;
}

}  // namespace ablate::coordinator::testing

#endif  // ABLATE_COORDINATOR_HTTP_LOOPBACK_COORDINATOR_H_
