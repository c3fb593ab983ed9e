// The HTTP listener's sockets, read back from the kernel: the options a test can check
// directly stand in for the latency they cause, which only a benchmark measures (see
// docs/benchmarks.md, "HTTP requests on a kept-alive connection").
#include <arpa/inet.h>
#include <dirent.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "coordinator/http/loopback_coordinator.h"
#include "coordinator/server.h"
#include "coordinator/testing/fixtures.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using testing::TempDir;

int LocalPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  return addr.sin_family == AF_INET ? ntohs(addr.sin_port) : -1;
}

int PeerPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  return addr.sin_family == AF_INET ? ntohs(addr.sin_port) : -1;
}

struct HttpReply {
  int status = 0;
  bool closes = false;  // the server said "Connection: close"
  std::string body;
};

// Sends one GET on `fd` and reads its reply, which must carry a Content-Length. nullopt when
// the connection ends before a whole reply arrived.
std::optional<HttpReply> Get(int fd, const std::string& path) {
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: test\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return std::nullopt;
  }
  std::string data;
  char buffer[4096];
  size_t header_end = std::string::npos;
  size_t length = 0;
  while (header_end == std::string::npos || data.size() < header_end + 4 + length) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) return std::nullopt;
    data.append(buffer, static_cast<size_t>(n));
    if (header_end == std::string::npos && (header_end = data.find("\r\n\r\n")) != data.npos) {
      const size_t at = data.find("Content-Length: ");
      if (at == std::string::npos || at > header_end) return std::nullopt;
      const size_t digits = at + strlen("Content-Length: ");
      if (!absl::SimpleAtoi(data.substr(digits, data.find("\r\n", digits) - digits), &length)) {
        return std::nullopt;
      }
    }
  }
  HttpReply reply;
  reply.status = std::atoi(data.c_str() + strlen("HTTP/1.1 "));
  reply.closes = data.substr(0, header_end).find("Connection: close") != std::string::npos;
  reply.body = data.substr(header_end + 4, length);
  return reply;
}

// The server's end of the loopback connection whose client end is `client_fd`: the socket of
// this process whose peer is that client end. -1 when none is open.
int ServerEndOf(int client_fd) {
  const int client_port = LocalPort(client_fd);
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/proc/self/fd"), closedir);
  if (dir == nullptr) return -1;
  while (dirent* entry = readdir(dir.get())) {
    int fd = -1;
    if (!absl::SimpleAtoi(entry->d_name, &fd) || fd == client_fd) continue;
    if (PeerPort(fd) == client_port) return fd;
  }
  return -1;
}

// The backlog of the TCP socket listening on `port`, as the kernel's socket diagnostics
// report it (the Send-Q column of `ss -lt`). -1 when no such socket is found.
int ListenBacklog(int port) {
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return -1;
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  message.header.nlmsg_len = sizeof(message);
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  message.request.sdiag_family = AF_INET;
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = 1u << 10;  // TCP_LISTEN
  int backlog = -1;
  if (send(nl, &message, sizeof(message), 0) == sizeof(message)) {
    alignas(nlmsghdr) char buffer[32768];
    bool done = false;
    while (!done) {
      ssize_t n = recv(nl, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
          done = true;
          break;
        }
        const auto* diag = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
        // For a listening socket the write-queue field holds its backlog.
        if (ntohs(diag->id.idiag_sport) == port) backlog = static_cast<int>(diag->idiag_wqueue);
      }
    }
  }
  close(nl);
  return backlog;
}

class HttpSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<CoordinatorServer>> server =
        testing::StartLoopbackCoordinator(dir_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override { server_->Shutdown(); }

  TempDir dir_;
  std::unique_ptr<CoordinatorServer> server_;
};

TEST_F(HttpSocketTest, AcceptedSocketsHaveNagleOff) {
  const int fd = testing::ConnectLoopback(server_->http_port());
  ASSERT_GE(fd, 0);
  std::optional<HttpReply> reply = Get(fd, "/healthz");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, "ok");
  const int server_end = ServerEndOf(fd);
  ASSERT_GE(server_end, 0) << "the server closed a kept-alive connection";
  int nodelay = 0;
  socklen_t len = sizeof(nodelay);
  ASSERT_EQ(getsockopt(server_end, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  EXPECT_NE(nodelay, 0);
  close(fd);
}

TEST_F(HttpSocketTest, ListenBacklogIsLargerThanHttplibs) {
  // The kernel caps the backlog at net.core.somaxconn, 4096 by default and never below 128.
  EXPECT_GE(ListenBacklog(server_->http_port()), 128);
}

TEST_F(HttpSocketTest, OneConnectionServesManyRequests) {
  const int fd = testing::ConnectLoopback(server_->http_port());
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 50; ++i) {
    std::optional<HttpReply> reply = Get(fd, "/healthz");
    ASSERT_TRUE(reply.has_value()) << "request " << i;
    EXPECT_EQ(reply->status, 200);
    EXPECT_FALSE(reply->closes) << "the server closed the connection after request " << i;
  }
  close(fd);
}

TEST_F(HttpSocketTest, PortIsExclusive) {
  CoordinatorOptions second;
  second.grpc_address = "127.0.0.1:0";
  second.http_address = absl::StrCat("127.0.0.1:", server_->http_port());
  second.db_path = dir_.File("second.db");
  CoordinatorServer other(second);
  absl::Status started = other.Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable) << started;
}

}  // namespace
}  // namespace ablate::coordinator
